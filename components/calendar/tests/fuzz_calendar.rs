//! A seeded fuzzer for the calendar arithmetic under every timestamp
//! parser: any year (the parsers hand over up to ten digits; a caller may
//! hand over any i64), month, day and time of day gives seconds or `None`
//! without overflowing, and seconds it gives are that date; any second an
//! i64 can hold has a date.

use lakeport_calendar::*;
use lakeport_testkit::{fuzz_settings, no_panic, Rng};

fn extreme_year(rng: &mut Rng) -> i64 {
    match rng.below(6) {
        0 => rng.next_u64() as i64,
        1 => *rng.pick(&[i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1, 0, -1, 1, 9999, 10_000, 4_294_967_295, -4_294_967_296]),
        2 => rng.below(1 << 40) as i64 - (1 << 39),
        _ => rng.below(20_000) as i64 - 5_000,
    }
}

#[test]
fn fuzz_calendar_never_panics() {
    let (iterations, seed) = fuzz_settings(1_000_000, 0x4341_4c45_4e44_4152);
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();
    for iteration in 0..iterations {
        let year = extreme_year(&mut rng);
        let (month, day) = (rng.below(15) as u32, rng.below(34) as u32);
        let (hour, minute, second) = (rng.below(26) as u32, rng.below(62) as u32, rng.below(62) as u32);
        let days = (rng.next_u64() as i64).div_euclid(86_400);
        let describe = || format!("iteration {iteration} (seed {seed}): {year}-{month}-{day} {hour}:{minute}:{second}, day {days}");
        no_panic(describe, || {
            if let Some(t) = unix_seconds(year, month, day, hour, minute, second) {
                let (y, m, d) = civil_from_days(t.div_euclid(86_400));
                let s = t.rem_euclid(86_400) as u32;
                if second < 60 {
                    assert_eq!((y, m, d, s), (year, month, day, hour * 3600 + minute * 60 + second));
                }
            }
            // Every second an i64 holds (HTTP date arithmetic, X-Amz-Date formatting).
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        });
    }
    println!("calendar: {iterations} dates in {:.2} s", started.elapsed().as_secs_f64());
}
