//! Test helpers shared by lakeport's crates: a seeded PRNG and a markup
//! mutator for the parsers' fuzz tests.

/// xorshift64* (Vigna): small, fast and the same on every platform, so a
/// seed names one sequence of generated or mutated inputs for good.
pub struct Rng(u64);

impl Rng {
    /// Any seed, spread by splitmix64 (xorshift needs a non-zero state and
    /// close seeds would otherwise start close).
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)).max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The `.xml` and `.html` files of `dir` as (file name, bytes), sorted by
/// name; fails unless there are at least `at_least` (a lost corpus would
/// make a fuzz test pass on nothing).
pub fn markup_corpus(dir: &str, at_least: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml" || e == "html"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(files.len() >= at_least, "the fixture corpus in {dir} is missing: {} files", files.len());
    files
}

/// One random edit of a markup answer (XML, HTML) for mutation fuzzing: a
/// flipped bit or byte, an inserted `token`, a deletion, a truncation, a
/// splice from another `corpus` entry, or a duplicated element.
pub fn mutate_markup(input: &mut Vec<u8>, tokens: &[&str], corpus: &[Vec<u8>], rng: &mut Rng) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next_u64() as u8;
        }
        2 => {
            let token = rng.pick(tokens).as_bytes();
            let i = rng.below(len + 1);
            input.splice(i..i, token.iter().copied());
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            input.drain(i..i + n);
        }
        4 => input.truncate(rng.below(len + 1)),
        5 => {
            let other = rng.pick(corpus);
            if !other.is_empty() {
                let a = rng.below(other.len());
                let b = a + rng.below(other.len() - a + 1);
                let i = rng.below(len + 1);
                let j = i + rng.below(len - i + 1);
                input.splice(i..j, other[a..b].iter().copied());
            }
        }
        _ => {
            if let Some((start, end)) = element_at(input, rng) {
                let copy = input[start..end].to_vec();
                let at = if rng.below(2) == 0 { end } else { rng.below(len + 1) };
                input.splice(at..at, copy);
            }
        }
    }
}

/// `<Name ...>...</Name>` around a random start tag, if there is one there.
fn element_at(input: &[u8], rng: &mut Rng) -> Option<(usize, usize)> {
    let starts: Vec<usize> =
        input.windows(2).enumerate().filter(|(_, w)| w[0] == b'<' && w[1].is_ascii_alphabetic()).map(|(i, _)| i).collect();
    if starts.is_empty() {
        return None;
    }
    let start = *rng.pick(&starts);
    let name_end = input[start + 1..].iter().position(|b| matches!(b, b'>' | b' ' | b'/')).map(|p| start + 1 + p)?;
    let close = [b"</".as_slice(), &input[start + 1..name_end], b">"].concat();
    let at = input[name_end..].windows(close.len()).position(|w| w == close.as_slice())?;
    Some((start, name_end + at + close.len()))
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn seeds_name_distinct_repeatable_sequences() {
        let run = |seed| {
            let mut r = Rng::new(seed);
            (0..4).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(2), run(3));
        let mut r = Rng::new(0);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
