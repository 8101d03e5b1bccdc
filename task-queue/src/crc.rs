//! CRC-32C (Castagnoli), the checksum every stored record carries.
//!
//! The polynomial of iSCSI, ext4 metadata and LevelDB's log records; it
//! catches every burst error up to 32 bits, so a flipped bit or byte in a
//! record never passes. A byte-at-a-time table is plenty here: records are
//! checked once when a store is loaded and encoded once per write, next to
//! an fsync.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// The remainder of every byte value, computed at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32C of `bytes`.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(all(test, not(sysblocks_loom)))]
mod tests {
    use super::crc32c;

    /// The check value of the CRC catalogue (Greg Cook's "Catalogue of
    /// parametrised CRC algorithms", CRC-32/ISCSI) and the test vectors of
    /// RFC 3720, appendix B.4.
    #[test]
    fn known_answers() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }
}
