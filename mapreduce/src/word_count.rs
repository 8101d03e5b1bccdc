//! The ready-made word-count job, [`WordCount`], with its tokenizer
//! [`for_each_word`] and the output order [`sort_by_count`].

use crate::error::TaskError;
use crate::job::{Emitter, Job};
use crate::word::Word;

/// For each byte: its lowercase form if it is an ASCII letter, else 0.
const LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

/// Calls `f` with every word of `text`, lowercased, in order. A word is a
/// maximal run of ASCII letters (`A-Z`, `a-z`); every other byte, including
/// every byte of a non-ASCII UTF-8 character and any invalid UTF-8, is a
/// separator. This is the C-locale reading of
/// `tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z'`.
pub fn for_each_word(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut small = [0u8; 64];
    let mut long = Vec::new();
    let mut len = 0usize;
    let mut in_long = false;
    for &b in text {
        let l = LOWER[b as usize];
        if l != 0 {
            if in_long {
                long.push(l);
            } else if len < small.len() {
                small[len] = l;
                len += 1;
            } else {
                long.clear();
                long.extend_from_slice(&small);
                long.push(l);
                in_long = true;
            }
        } else if in_long {
            f(&long);
            in_long = false;
            len = 0;
        } else if len > 0 {
            f(&small[..len]);
            len = 0;
        }
    }
    if in_long {
        f(&long);
    } else if len > 0 {
        f(&small[..len]);
    }
}

/// Counts words (see [`for_each_word`]) in text lines; combines counts as
/// they are emitted. Keys are [`Word`]s (short words inline).
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCount;

impl Job for WordCount {
    type Record = [u8];
    type Key = Word;
    type Value = u64;
    type Output = u64;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
        for_each_word(line, |w| emit.emit_ref(w, 1));
        Ok(())
    }

    fn combine(&self, _key: &Word, acc: &mut u64, value: u64) -> Option<u64> {
        *acc += value;
        None
    }

    fn reduce(&self, _key: &Word, values: Vec<u64>) -> Result<u64, TaskError> {
        Ok(values.iter().sum())
    }
}

/// Sorts word counts by descending count, then ascending word: the order
/// of the `word_count` example's output.
pub fn sort_by_count<W: Ord>(counts: &mut [(W, u64)]) {
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[u8]) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for_each_word(s, |w| v.push(w.to_vec()));
        v
    }

    #[test]
    fn splits_on_non_letters() {
        assert_eq!(
            words(b"Hello, World! it's  x9Y\xff\xfe caf\xc3\xa9"),
            vec![
                b"hello".to_vec(),
                b"world".to_vec(),
                b"it".to_vec(),
                b"s".to_vec(),
                b"x".to_vec(),
                b"y".to_vec(),
                b"caf".to_vec()
            ]
        );
        assert!(words(b"").is_empty());
        assert!(words(b"123 ... \n").is_empty());
    }

    #[test]
    fn long_words_are_whole() {
        let long: Vec<u8> = (0..200).map(|i| b'A' + (i % 26) as u8).collect();
        let mut text = long.clone();
        text.extend_from_slice(b" end");
        let w = words(&text);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], long.to_ascii_lowercase());
        assert_eq!(w[1], b"end");
        // A word of exactly the stack buffer's size, then one just over it.
        for n in [63usize, 64, 65] {
            let t = vec![b'q'; n];
            assert_eq!(words(&t), vec![t.clone()]);
        }
    }

    #[test]
    fn sorts_by_count_then_word() {
        let mut v = vec![(b"b".to_vec(), 2), (b"a".to_vec(), 2), (b"c".to_vec(), 5)];
        sort_by_count(&mut v);
        let order: Vec<&[u8]> = v.iter().map(|x| &x.0[..]).collect();
        assert_eq!(order, vec![&b"c"[..], b"a", b"b"]);
    }
}
