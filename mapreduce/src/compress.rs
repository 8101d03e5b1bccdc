//! Compressed text input: which files are compressed, and the readers that
//! decompress them (gzip through flate2's pure-Rust backend with feature
//! `gzip`, zstd through the pure-Rust ruzstd decoder with feature `zstd`).
//!
//! A compressed file cannot be cut at a byte offset, so it is one split,
//! read by one map task (as Hadoop reads a gzip file); give a job many
//! compressed files, not one large one, to keep every thread busy.

#[cfg(feature = "zstd")]
use std::io::BufRead;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// How the files of a [`TextInput`](crate::TextInput) are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// By extension: `.gz` is gzip when the `gzip` feature is on, `.zst`
    /// is zstd when the `zstd` feature is on; any other file is plain.
    #[default]
    Auto,
    /// Every file is plain text, whatever its name.
    None,
    /// Every file is gzip (one or more members); needs the `gzip` feature.
    Gzip,
    /// Every file is zstd (one or more frames); needs the `zstd` feature.
    Zstd,
}

/// How one file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileCodec {
    Plain,
    Gzip,
    Zstd,
}

impl Compression {
    /// How `path` is read under this setting.
    ///
    /// # Errors
    ///
    /// An `Unsupported` I/O error when the setting names a format whose
    /// feature is off.
    pub(crate) fn for_file(self, path: &Path) -> io::Result<FileCodec> {
        let unsupported = |what: &str| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{what} input needs the `{what}` feature of sysblocks-mapreduce"),
            )
        };
        let ext = path.extension().and_then(|e| e.to_str());
        match self {
            Self::None => Ok(FileCodec::Plain),
            Self::Auto => Ok(match ext {
                Some("gz") if cfg!(feature = "gzip") => FileCodec::Gzip,
                Some("zst") if cfg!(feature = "zstd") => FileCodec::Zstd,
                _ => FileCodec::Plain,
            }),
            Self::Gzip if cfg!(feature = "gzip") => Ok(FileCodec::Gzip),
            Self::Gzip => Err(unsupported("gzip")),
            Self::Zstd if cfg!(feature = "zstd") => Ok(FileCodec::Zstd),
            Self::Zstd => Err(unsupported("zstd")),
        }
    }
}

/// A reader of the decompressed bytes of `input`, a compressed file.
pub(crate) fn decoder<'r, R: Read + 'r>(
    codec: FileCodec,
    input: R,
) -> io::Result<Box<dyn Read + 'r>> {
    let input = BufReader::with_capacity(256 * 1024, input);
    match codec {
        FileCodec::Plain => Ok(Box::new(input)),
        #[cfg(feature = "gzip")]
        FileCodec::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input))),
        #[cfg(feature = "zstd")]
        FileCodec::Zstd => Ok(Box::new(ZstdFrames {
            frame: None,
            input: Some(input),
        })),
        #[allow(unreachable_patterns)]
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "compressed input without its feature",
        )),
    }
}

/// Every frame of a zstd stream, one after the other (ruzstd's
/// `StreamingDecoder` reads one frame).
#[cfg(feature = "zstd")]
struct ZstdFrames<R: BufRead> {
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
    /// The input between frames.
    input: Option<R>,
}

#[cfg(feature = "zstd")]
impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = &mut self.frame {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                if let Some(f) = self.frame.take() {
                    let (input, decoder) = f.into_parts();
                    if !decoder.is_finished() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "truncated zstd frame",
                        ));
                    }
                    self.input = Some(input);
                }
            }
            let Some(mut input) = self.input.take() else {
                return Ok(0);
            };
            if input.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.frame = Some(frame);
        }
    }
}

/// Counts the bytes read through it (the compressed bytes, for progress).
pub(crate) struct Counting<'a, R> {
    pub(crate) inner: R,
    pub(crate) bytes: &'a crate::sync::AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes
            .fetch_add(n as u64, crate::sync::Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_settings() {
        let gz = Path::new("a/b.txt.gz");
        let zst = Path::new("b.zst");
        let txt = Path::new("c.txt");
        assert_eq!(Compression::Auto.for_file(txt).unwrap(), FileCodec::Plain);
        assert_eq!(Compression::None.for_file(gz).unwrap(), FileCodec::Plain);
        let want = |on: bool, c| if on { c } else { FileCodec::Plain };
        assert_eq!(
            Compression::Auto.for_file(gz).unwrap(),
            want(cfg!(feature = "gzip"), FileCodec::Gzip)
        );
        assert_eq!(
            Compression::Auto.for_file(zst).unwrap(),
            want(cfg!(feature = "zstd"), FileCodec::Zstd)
        );
        assert_eq!(
            Compression::Gzip.for_file(txt).is_ok(),
            cfg!(feature = "gzip")
        );
        assert_eq!(
            Compression::Zstd.for_file(txt).is_ok(),
            cfg!(feature = "zstd")
        );
    }
}

#[cfg(all(test, feature = "zstd"))]
mod zstd_tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut d = decoder(FileCodec::Zstd, bytes)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = d.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn frames_in_order_and_truncation_is_an_error() {
        let a: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let b = b"second frame\n".repeat(1000);
        let letters = |mut n: u32| {
            let mut s = String::new();
            loop {
                s.insert(0, char::from(b'a' + (n % 26) as u8));
                n /= 26;
                if n == 0 {
                    return s;
                }
            }
        };
        let text: String = (0..30_000u32)
            .map(|i| format!("{} {}\n", letters(i % 700), letters(i % 13)))
            .collect();
        let t = zstd::encode_all(text.as_bytes(), 1).unwrap();
        assert!(read_all(&t[..t.len() / 2]).is_err(), "text");
        let (x, y) = text.as_bytes().split_at(text.len() / 3);
        let two = [
            zstd::encode_all(x, 1).unwrap(),
            zstd::encode_all(y, 1).unwrap(),
        ]
        .concat();
        assert_eq!(read_all(&two).unwrap(), text.as_bytes());
        // Inside the second frame (a cut between frames is a whole stream).
        assert!(read_all(&two[..two.len() - 9]).is_err());
        let both = [
            zstd::encode_all(&a[..], 1).unwrap(),
            zstd::encode_all(&b[..], 1).unwrap(),
        ]
        .concat();
        assert_eq!(read_all(&both).unwrap(), [a, b].concat());
        for cut in [1, 7, both.len() / 3, both.len() / 2, both.len() - 1] {
            assert!(
                read_all(&both[..cut]).is_err(),
                "cut at {cut} of {}",
                both.len()
            );
        }
    }
}
