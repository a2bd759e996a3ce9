//! Test input: valid wire text damaged at random (bytes changed, inserted,
//! removed, lines cut), reproducibly, to show that parsers meet garbage
//! from the network with an error and never a panic.

/// xorshift64*: reproducible, and enough to spread damage over a head.
pub struct Mangler(u64);

impl Mangler {
    pub fn new(seed: u64) -> Self {
        Mangler(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Bytes the HTTP grammar cares about, more often than others.
    fn byte(&mut self) -> u8 {
        const SPECIAL: &[u8] = b"\r\n:; \t,0123456789abcdefABCDEF-\x00\x7f\x80\xff";
        if self.below(3) == 0 {
            self.next() as u8
        } else {
            SPECIAL[self.below(SPECIAL.len())]
        }
    }

    /// `seed` with one to four random edits.
    pub fn mangle(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(5) {
                0 if at < out.len() => out[at] = self.byte(),
                1 => out.insert(at, self.byte()),
                2 if at < out.len() => {
                    out.remove(at);
                }
                3 => out.truncate(at),
                _ => {
                    // Repeat a slice: long lines, doubled headers and chunks.
                    let end = (at + self.below(40)).min(out.len());
                    let copy = out[at..end].repeat(1 + self.below(8));
                    out.splice(at..at, copy);
                }
            }
        }
        out
    }
}
