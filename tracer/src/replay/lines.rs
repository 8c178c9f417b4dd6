//! The lines of a log, read in large blocks and handed out as slices of the block: no copy and
//! no allocation per line (a replay reads millions of them).

use std::io::{self, Read};

/// Bytes read at a time. Large enough that a read costs little per line, small enough to stay
/// in the cache while its lines are parsed.
const BLOCK: usize = 256 * 1024;

pub struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    /// Where the next line starts.
    pos: usize,
    /// The end of what was read.
    end: usize,
    /// How far from `pos` the search for a newline has looked (a long line read in pieces is
    /// not searched again from its start for each piece).
    searched: usize,
    /// Where the next line ends, when [`ready`](Self::ready) found it.
    found: Option<usize>,
    eof: bool,
}

impl<R: Read> Lines<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            buf: vec![0; BLOCK],
            pos: 0,
            end: 0,
            searched: 0,
            found: None,
            eof: false,
        }
    }

    /// Whether [`next_line`](Self::next_line) can answer without reading the input: a whole
    /// line is buffered, or the input has ended.
    pub fn ready(&mut self) -> bool {
        if self.found.is_none() {
            self.found = self.find_newline();
        }
        self.found.is_some() || self.eof
    }

    /// The next line with its newline, or without one if it is the last and has none; `None`
    /// at the end of the input. A line longer than the buffer grows it.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        let (start, stop) = loop {
            if let Some(stop) = self.found.take().or_else(|| self.find_newline()) {
                break (self.pos, stop);
            }
            if self.eof {
                if self.pos == self.end {
                    return Ok(None);
                }
                break (self.pos, self.end);
            }
            self.fill()?;
        };
        self.pos = stop;
        self.searched = 0;
        Ok(Some(&self.buf[start..stop]))
    }

    /// Where the buffered line ends (after its newline), searching only what was not searched
    /// before; `None` when no whole line is buffered.
    fn find_newline(&mut self) -> Option<usize> {
        let from = self.pos + self.searched;
        let found = memchr::memchr(b'\n', &self.buf[from..self.end]).map(|n| from + n + 1);
        if found.is_none() {
            self.searched = self.end - self.pos;
        }
        found
    }

    /// Moves the start of a line to the front of the buffer and reads after it.
    fn fill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `step` bytes a time, to cut lines at every place.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all(data: &[u8], step: usize) -> Vec<Vec<u8>> {
        let mut lines = Lines::new(Trickle { data, step });
        let mut out = Vec::new();
        loop {
            // Asking whether a line is ready changes nothing of what comes.
            if out.len() % 2 == 1 {
                lines.ready();
            }
            let Some(line) = lines.next_line().unwrap() else {
                break;
            };
            out.push(line.to_vec());
        }
        out
    }

    #[test]
    fn lines_as_read_until_gives_them() {
        let long = vec![b'x'; 3 * BLOCK + 17];
        let mut data = b"a\n\nbc\r\n".to_vec();
        data.extend_from_slice(&long);
        data.extend_from_slice(b"\nlast without newline");
        let mut expected = Vec::new();
        let mut reader = io::BufReader::new(&data[..]);
        loop {
            let mut line = Vec::new();
            if io::BufRead::read_until(&mut reader, b'\n', &mut line).unwrap() == 0 {
                break;
            }
            expected.push(line);
        }
        assert_eq!(expected.len(), 5);
        for step in [1, 7, BLOCK - 1, BLOCK, usize::MAX] {
            assert_eq!(all(&data, step), expected, "step {step}");
        }
        assert!(all(b"", 10).is_empty());
        assert_eq!(all(b"\n", 10), vec![b"\n".to_vec()]);
    }
}
