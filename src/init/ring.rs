//! Container output: a bounded ring of the latest bytes per container (for `dory ctl logs`)
//! and a line splitter that turns pipe reads into whole console lines.

/// Bytes of output kept per container; the oldest are dropped first.
pub const LOG_RING_BYTES: usize = 4 * 1024;
/// Longest console line forwarded as one; longer lines are cut into pieces of this size.
pub const MAX_LINE_BYTES: usize = 256;

/// A fixed-size ring of bytes that drops the oldest on overflow.
pub struct Ring<const N: usize> {
    buf: [u8; N],
    /// Index of the oldest byte.
    start: usize,
    len: usize,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            start: 0,
            len: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, data: &[u8]) {
        if N == 0 {
            return;
        }
        // Only the last N bytes of `data` can survive.
        let data = data.get(data.len().saturating_sub(N)..).unwrap_or(data);
        for &b in data {
            let end = (self.start + self.len) % N;
            if let Some(slot) = self.buf.get_mut(end) {
                *slot = b;
            }
            if self.len == N {
                self.start = (self.start + 1) % N;
            } else {
                self.len += 1;
            }
        }
    }

    /// The contents, oldest first, as two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let first_end = (self.start + self.len).min(N);
        let first = self.buf.get(self.start..first_end).unwrap_or_default();
        let wrapped = self.len - first.len();
        let second = self.buf.get(..wrapped).unwrap_or_default();
        (first, second)
    }

    #[cfg(test)]
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }
}

/// Collects bytes into lines; a line is emitted at `\n` or when [`MAX_LINE_BYTES`] is full.
#[derive(Default)]
pub struct LineSplitter {
    pending: heapless::Vec<u8, MAX_LINE_BYTES>,
}

impl LineSplitter {
    /// Feeds `data`, calling `emit` with each completed line (without its `\n`).
    pub fn feed(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        for &b in data {
            if b == b'\n' {
                emit(&self.pending);
                self.pending.clear();
                continue;
            }
            if self.pending.push(b).is_err() {
                emit(&self.pending);
                self.pending.clear();
                // Cannot fail: just cleared and capacity > 0.
                let _ = self.pending.push(b);
            }
        }
    }

    /// Emits a final unterminated line, if any (at EOF).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents<const N: usize>(r: &Ring<N>) -> Vec<u8> {
        let (a, b) = r.as_slices();
        [a, b].concat()
    }

    #[test]
    fn ring_keeps_latest_bytes() {
        let mut r: Ring<8> = Ring::new();
        assert!(r.is_empty());
        r.push(b"abc");
        assert_eq!(contents(&r), b"abc");
        r.push(b"defgh");
        assert_eq!(contents(&r), b"abcdefgh");
        r.push(b"ij");
        assert_eq!(contents(&r), b"cdefghij");
        assert_eq!(r.len(), 8);
        r.push(b"0123456789XYZ");
        assert_eq!(contents(&r), b"56789XYZ");
        r.clear();
        r.push(b"z");
        assert_eq!(contents(&r), b"z");
    }

    #[test]
    fn ring_of_real_size_drops_oldest_lines() {
        let mut r: Ring<LOG_RING_BYTES> = Ring::new();
        for i in 0..1000 {
            r.push(format!("line {i:04}\n").as_bytes());
        }
        let text = String::from_utf8(contents(&r)).unwrap();
        assert_eq!(text.len(), LOG_RING_BYTES);
        assert!(text.ends_with("line 0999\n"));
        assert!(!text.contains("line 0000"));
    }

    #[test]
    fn splitter_emits_whole_lines() {
        let mut s = LineSplitter::default();
        let mut lines: Vec<Vec<u8>> = vec![];
        s.feed(b"hel", |l| lines.push(l.to_vec()));
        assert!(lines.is_empty());
        s.feed(b"lo\nwor", |l| lines.push(l.to_vec()));
        s.feed(b"ld\n\nx", |l| lines.push(l.to_vec()));
        s.flush(|l| lines.push(l.to_vec()));
        assert_eq!(
            lines,
            [b"hello".to_vec(), b"world".to_vec(), vec![], b"x".to_vec()]
        );
        let mut lines: Vec<Vec<u8>> = vec![];
        s.feed(&[b'a'; MAX_LINE_BYTES + 3], |l| lines.push(l.to_vec()));
        s.flush(|l| lines.push(l.to_vec()));
        assert_eq!(
            lines.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_LINE_BYTES, 3]
        );
    }
}
