//! Time per SigV4 signature, on the same S3 requests, of:
//! - `component_oneshot`: the sigv4 component through the host, `sign`
//!   with the credentials passed on every call;
//! - `component_signer`: the component through the host, a reused `signer`
//!   resource (the signing key is derived once);
//! - `component_send`: the same, through `sign-for-sending`, which returns
//!   only the URL and headers to send (like aws-sigv4's signing
//!   instructions), not the diagnostic strings;
//! - `native_oneshot` / `native_signer`: the same core compiled natively;
//! - `aws_sigv4`: the AWS SDK for Rust's signer, aws-sigv4 1.6.4.
//!
//! Before timing, every signer signs every request at one fixed time and
//! must produce the same signature (else the run panics). The request set
//! and those signatures are written as JSON for the botocore benchmark
//! (benches/botocore_sigv4.py), to `$LAKEPORT_BENCH_OUT/cases.json`
//! (default target/bench-results).

use std::cell::RefCell;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lakeport::runtime::Runtime;
use lakeport::sigv4::{SignerHandle, Sigv4};
use lakeport_benches::{aws, cases, cases_json, host, native, Case};

/// The host's store gets its CPU deadline once, when the instance is made,
/// and calls do not renew it: an instance older than the deadline (30 s)
/// traps on every call. The benchmark therefore uses instances younger
/// than this, made again (outside the timing) when they get older.
const MAX_INSTANCE_AGE: Duration = Duration::from_secs(20);

struct Instance {
    made: Instant,
    sigv4: Sigv4,
    /// One signer per case (cases differ in credentials).
    signers: Vec<SignerHandle>,
}

impl Instance {
    fn new(runtime: &Runtime, cases: &[Case]) -> Self {
        let mut sigv4 = Sigv4::new(runtime).expect("instantiating the sigv4 component");
        let signers = cases
            .iter()
            .map(|c| sigv4.signer(&host::credentials(c)).expect("creating a signer"))
            .collect();
        Instance { made: Instant::now(), sigv4, signers }
    }

    /// An instance with at least `MAX_INSTANCE_AGE` of life left before
    /// the host's deadline (see above).
    fn fresh<'a>(slot: &'a mut Option<Instance>, runtime: &Runtime, cases: &[Case]) -> &'a mut Instance {
        if slot.as_ref().is_none_or(|i| i.made.elapsed() > MAX_INSTANCE_AGE) {
            *slot = Some(Instance::new(runtime, cases));
        }
        slot.as_mut().expect("set above")
    }
}

fn out_dir() -> PathBuf {
    match std::env::var_os("LAKEPORT_BENCH_OUT") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results"),
    }
}

/// Signs every case with every signer at the fixed time; panics unless all
/// agree. Returns the signatures.
fn verify(runtime: &Runtime, cases: &[Case]) -> Vec<String> {
    let mut inst = Instance::new(runtime, cases);
    let mut signatures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let native = lakeport_sigv4::sign(&native::request(case), native::credentials(case), &native::options(case))
            .unwrap_or_else(|e| panic!("{}: native core failed: {e}", case.name));
        let mut native_signer = lakeport_sigv4::Signer::new(native::credentials(case)).unwrap();
        let native_reused = native_signer.sign(&native::request(case), &native::options(case)).unwrap();
        let oneshot = inst
            .sigv4
            .sign(&host::request(case), &host::credentials(case), &host::options(case))
            .expect("calling the component")
            .unwrap_or_else(|e| panic!("{}: component failed: {}", case.name, e.message()));
        let resource = inst
            .sigv4
            .signer_sign(&inst.signers[i], &host::request(case), &host::options(case))
            .expect("calling the component")
            .unwrap_or_else(|e| panic!("{}: component signer failed: {}", case.name, e.message()));
        let to_send = inst
            .sigv4
            .signer_sign_for_sending(&inst.signers[i], &host::request(case), &host::options(case))
            .expect("calling the component")
            .unwrap_or_else(|e| panic!("{}: component sign-for-sending failed: {}", case.name, e.message()));
        if to_send.url != resource.url || to_send.headers != resource.headers {
            panic!("{}: sign-for-sending differs from sign", case.name);
        }
        let identity = aws::identity(case);
        let aws_sig = aws::sign(case, &aws::params(case, &identity)).unwrap_or_else(|e| panic!("{}: aws-sigv4 failed: {e}", case.name));

        let all = [
            ("native_oneshot", &native.signature),
            ("native_signer", &native_reused.signature),
            ("component_oneshot", &oneshot.signature),
            ("component_signer", &resource.signature),
            ("aws_sigv4", &aws_sig),
        ];
        if all.iter().any(|(_, s)| *s != &native.signature) {
            panic!(
                "{}: the signers disagree, so the comparison would not be fair:\n{}\n\nnative canonical request:\n{}",
                case.name,
                all.iter().map(|(n, s)| format!("  {n:18} {s}")).collect::<Vec<_>>().join("\n"),
                native.canonical_request
            );
        }
        if oneshot.canonical_request != native.canonical_request || oneshot.url != native.url || oneshot.headers != native.headers {
            panic!("{}: the component's output differs from the native core's", case.name);
        }
        eprintln!("verified {:24} {}", case.name, native.signature);
        signatures.push(native.signature);
    }
    signatures
}

fn benches(c: &mut Criterion) {
    let cases = cases();
    let runtime = Runtime::new().expect("starting the wasmtime runtime");
    let signatures = verify(&runtime, &cases);
    let out = out_dir();
    std::fs::create_dir_all(&out).expect("creating the results directory");
    let json = serde_json::to_string_pretty(&cases_json(&cases, &signatures)).unwrap();
    std::fs::write(out.join("cases.json"), json).expect("writing cases.json");

    let mut group = c.benchmark_group("sigv4");
    let slot: RefCell<Option<Instance>> = RefCell::new(None);
    for (i, case) in cases.iter().enumerate() {
        // Inputs are built once, outside the timing, for every signer.
        let (h_req, h_creds, h_opts) = (host::request(case), host::credentials(case), host::options(case));
        let (n_req, n_creds, n_opts) = (native::request(case), native::credentials(case), native::options(case));
        let identity = aws::identity(case);
        let aws_params = aws::params(case, &identity);

        group.bench_with_input(BenchmarkId::new("component_oneshot", case.name), case, |b, _| {
            let mut slot = slot.borrow_mut();
            let inst = Instance::fresh(&mut slot, &runtime, &cases);
            b.iter(|| black_box(inst.sigv4.sign(black_box(&h_req), black_box(&h_creds), black_box(&h_opts)).unwrap().unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("component_signer", case.name), case, |b, _| {
            let mut slot = slot.borrow_mut();
            let inst = Instance::fresh(&mut slot, &runtime, &cases);
            let signer = &inst.signers[i];
            b.iter(|| black_box(inst.sigv4.signer_sign(signer, black_box(&h_req), black_box(&h_opts)).unwrap().unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("component_send", case.name), case, |b, _| {
            let mut slot = slot.borrow_mut();
            let inst = Instance::fresh(&mut slot, &runtime, &cases);
            let signer = &inst.signers[i];
            b.iter(|| black_box(inst.sigv4.signer_sign_for_sending(signer, black_box(&h_req), black_box(&h_opts)).unwrap().unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("native_oneshot", case.name), case, |b, _| {
            b.iter(|| black_box(lakeport_sigv4::sign(black_box(&n_req), black_box(n_creds.clone()), black_box(&n_opts)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("native_signer", case.name), case, |b, _| {
            let mut signer = lakeport_sigv4::Signer::new(n_creds.clone()).unwrap();
            b.iter(|| black_box(signer.sign(black_box(&n_req), black_box(&n_opts)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("aws_sigv4", case.name), case, |b, case| {
            b.iter(|| black_box(aws::sign(black_box(case), black_box(&aws_params)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(sigv4, benches);
criterion_main!(sigv4);
