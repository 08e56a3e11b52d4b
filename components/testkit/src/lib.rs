//! Test helpers shared by lakeport's crates: a seeded PRNG, and a mutator
//! of server answers with the harness for the parsers' fuzz tests.

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

/// The files of `dir` whose names end in one of `extensions`, as (file
/// name, bytes), sorted by name; fails unless there are at least
/// `at_least` (a lost corpus would make a fuzz test pass on nothing).
pub fn fixture_corpus(dir: &str, extensions: &[&str], at_least: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| extensions.iter().any(|x| e == *x)))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(files.len() >= at_least, "the fixture corpus in {dir} is missing: {} files", files.len());
    files
}

/// The iteration count and seed of a fuzz test: its defaults, unless
/// `LAKEPORT_FUZZ_ITERATIONS` or `LAKEPORT_FUZZ_SEED` say otherwise (a long
/// run, or another sequence: `LAKEPORT_FUZZ_ITERATIONS=10000000 cargo test
/// --release -p CRATE --test NAME`).
pub fn fuzz_settings(default_iterations: u64, default_seed: u64) -> (u64, u64) {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse().ok());
    (var("LAKEPORT_FUZZ_ITERATIONS").unwrap_or(default_iterations), var("LAKEPORT_FUZZ_SEED").unwrap_or(default_seed))
}

/// Runs `f`; a panic in it fails the test naming the input (`describe`),
/// so that a fuzzer's finding can be reproduced and minimized.
pub fn no_panic<T>(describe: impl FnOnce() -> String, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("panicked at {}", describe()))
}

/// A mutation fuzz run: `iterations` times (see [`fuzz_settings`]) a
/// random `corpus` entry gets one to four [`mutate`] edits and goes to
/// `check`, which parses it (drawing further choices from the generator)
/// and asserts what must hold. A panic, in the parser or an assertion,
/// fails the test naming the iteration, seed and input. Prints and
/// returns the time taken.
pub fn fuzz(
    name: &str,
    corpus: &[Vec<u8>],
    tokens: &[&str],
    (default_iterations, default_seed): (u64, u64),
    mut check: impl FnMut(&[u8], &mut Rng),
) -> std::time::Duration {
    assert!(!corpus.is_empty(), "{name}: an empty corpus");
    let (iterations, seed) = fuzz_settings(default_iterations, default_seed);
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();
    for iteration in 0..iterations {
        let mut input = rng.pick(corpus).clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut input, tokens, corpus, &mut rng);
        }
        let describe = || format!("{name}: iteration {iteration} (seed {seed}), input {:?}", String::from_utf8_lossy(&input));
        no_panic(describe, || check(&input, &mut rng));
    }
    let elapsed = started.elapsed();
    println!("{name}: {iterations} mutated inputs in {:.2} s", elapsed.as_secs_f64());
    elapsed
}

/// Numbers that overflow, underflow or mean "none" somewhere.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1.5",
    "1e309",
    "-1e309",
    "1e-400",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "0x10",
    "NaN",
];

/// Byte sequences that are not UTF-8: overlong forms of `/` and NUL, a
/// surrogate, a code point above U+10FFFF, a lone continuation byte, a
/// cut sequence and bytes that never occur.
const BAD_UTF8: &[&[u8]] =
    &[b"\xc0\xaf", b"\xe0\x80\xaf", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82", b"\xfe", b"\xff"];

/// One random edit of a server's answer (XML, HTML, JSON, a header value)
/// for mutation fuzzing: a flipped bit or byte, an inserted `token` (or
/// many in a row: deep nesting), a deletion, a truncation, a splice from
/// another `corpus` entry, a duplicated element or JSON value, a repeated
/// slice, a number swapped for an extreme one, or bytes that are not UTF-8.
pub fn mutate(input: &mut Vec<u8>, tokens: &[&str], corpus: &[Vec<u8>], rng: &mut Rng) {
    let len = input.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next_u64() as u8;
        }
        2 | 3 => {
            let token = rng.pick(tokens).as_bytes();
            let i = rng.below(len + 1);
            input.splice(i..i, token.iter().copied());
        }
        4 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            input.drain(i..i + n);
        }
        5 => input.truncate(rng.below(len + 1)),
        6 => {
            let other = rng.pick(corpus);
            if !other.is_empty() {
                let a = rng.below(other.len());
                let b = a + rng.below(other.len() - a + 1);
                let i = rng.below(len + 1);
                let j = i + rng.below(len - i + 1);
                input.splice(i..j, other[a..b].iter().copied());
            }
        }
        7 => {
            let token = rng.pick(tokens).as_bytes();
            let most = if rng.below(4) == 0 { 2000 } else { 40 };
            let depth = 2 + rng.below(most);
            let i = rng.below(len + 1);
            input.splice(i..i, token.iter().copied().cycle().take(token.len() * depth));
        }
        8 if len > 0 => {
            let a = rng.below(len);
            let b = a + 1 + rng.below((len - a).min(256));
            let copy = input[a..b].repeat(1 + rng.below(8));
            input.splice(b..b, copy);
        }
        9 => {
            if let Some((start, end)) = number_at(input, rng) {
                input.splice(start..end, rng.pick(NUMBERS).bytes());
            }
        }
        10 => {
            let bad = *rng.pick(BAD_UTF8);
            let i = rng.below(len + 1);
            input.splice(i..i, bad.iter().copied());
        }
        _ => {
            let found = if rng.below(2) == 0 { element_at(input, rng) } else { json_value_at(input, rng) };
            if let Some((start, end)) = found {
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

/// A JSON object, array or string starting at a random `{`, `[` or `"`,
/// up to its balanced end (brackets inside strings are skipped).
fn json_value_at(input: &[u8], rng: &mut Rng) -> Option<(usize, usize)> {
    let starts: Vec<usize> = input.iter().enumerate().filter(|(_, b)| matches!(b, b'{' | b'[' | b'"')).map(|(i, _)| i).collect();
    if starts.is_empty() {
        return None;
    }
    let start = *rng.pick(&starts);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in input.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return Some((start, i + 1));
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some((start, i + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// A random run of digits (with a sign or fraction), if there is one.
fn number_at(input: &[u8], rng: &mut Rng) -> Option<(usize, usize)> {
    let digit_starts: Vec<usize> = input
        .iter()
        .enumerate()
        .filter(|&(i, b)| b.is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit()))
        .map(|(i, _)| i)
        .collect();
    if digit_starts.is_empty() {
        return None;
    }
    let start = *rng.pick(&digit_starts);
    let start = if start > 0 && input[start - 1] == b'-' { start - 1 } else { start };
    let end = start + 1 + input[start + 1..].iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn json_values_are_found_whole() {
        let doc = br#"{"a":["x]","y"],"b":{"c":"\"}"}}"#;
        let mut rng = Rng::new(1);
        let found: Vec<&str> =
            (0..200).filter_map(|_| json_value_at(doc, &mut rng)).map(|(start, end)| std::str::from_utf8(&doc[start..end]).unwrap()).collect();
        // From a closing quote, a "string" may run to the end: then nothing is found.
        for whole in [std::str::from_utf8(doc).unwrap(), r#"["x]","y"]"#, r#"{"c":"\"}"}"#, r#""x]""#] {
            assert!(found.contains(&whole), "{whole} in {found:?}");
        }
        assert_eq!(json_value_at(b"[1, 2", &mut rng), None);
    }

    #[test]
    fn mutations_repeat_for_a_seed() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut input = br#"{"expires_in":3600,"scope":"openid"}"#.to_vec();
            for _ in 0..50 {
                mutate(&mut input, &["{", "\""], &[b"<a>1</a>".to_vec()], &mut rng);
            }
            input
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
