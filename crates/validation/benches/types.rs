//! Validations per second on one core, for every shipped receipt type and format: the
//! compiled schema and rules of a loaded type set, valid and invalid documents (an invalid one
//! also renders every reason's message). `cargo bench -p receipts-validation --bench types`.
//!
//! Each figure is the best of five rounds of at least 0.3 s, on one thread (so one core).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use receipts_validation::types::TypeSet;

fn per_second(run: &mut dyn FnMut()) -> f64 {
    let mut best = 0.0_f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut count = 0_u64;
        while start.elapsed() < Duration::from_millis(300) {
            for _ in 0..100 {
                run();
            }
            count += 100;
        }
        best = best.max(count as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    // Test runners list every target's tests (`--list`); a benchmark has none to offer.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../receipt-types");
    let (types, errors) = TypeSet::load(&dir, None);
    assert!(errors.is_empty(), "{errors:?}");
    let at = Utc::now();
    println!(
        "{:<26} {:<5} {:>16} {:>16}",
        "receipt type", "fmt", "valid/s/core", "invalid/s/core"
    );
    // `cargo bench ... -- restaurant`: only the types whose name contains an argument.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (receipt_type, format) in types.submission_kinds() {
        if !filters.is_empty() && !filters.iter().any(|f| receipt_type.contains(f.as_str())) {
            continue;
        }
        let valid = types.sample(&receipt_type, format, true, 1);
        let invalid = types.sample(&receipt_type, format, false, 1);
        let (Some(valid), Some(invalid)) = (valid, invalid) else {
            println!("{receipt_type:<26} {format:<5} (no samples)");
            continue;
        };
        assert!(
            types.validate(&receipt_type, format, &valid, at).is_ok(),
            "{receipt_type}"
        );
        let valid_rate = per_second(&mut || {
            std::hint::black_box(types.validate(&receipt_type, format, &valid, at).is_ok());
        });
        let invalid_rate = per_second(&mut || {
            std::hint::black_box(types.validate(&receipt_type, format, &invalid, at).is_err());
        });
        println!("{receipt_type:<26} {format:<5} {valid_rate:>16.0} {invalid_rate:>16.0}");
    }
}
