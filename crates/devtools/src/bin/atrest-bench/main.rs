//! `atrest-bench NAME [ARGS...]`: the benchmarks behind `cargo xtask bench NAME`. Each prints its figures as
//! ratios against a baseline measured in the same run (etcdctl, raw etcd puts, the tutorial's kubectl pipeline).

mod etcdcheck;
mod reencrypt;
mod rusage;
mod sandbox;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        eprintln!("usage: atrest-bench etcdcheck|sandbox|reencrypt [ARGS...]");
        return ExitCode::from(2);
    };
    let result = match name.as_str() {
        "--measure-child" => rusage::measure_child(rest),
        "etcdcheck" => etcdcheck::run(rest),
        "reencrypt" => reencrypt::run(rest),
        "sandbox" => sandbox::run(rest),
        other => {
            eprintln!("atrest-bench: unknown benchmark {other:?}: etcdcheck | sandbox | reencrypt");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atrest-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
