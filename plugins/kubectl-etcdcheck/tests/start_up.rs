#[path = "../../start_up_tests.rs"]
mod start_up_tests;

#[test]
fn usage_error_exits_1() {
    start_up_tests::usage_error_exits_1(env!("CARGO_BIN_EXE_kubectl-etcdcheck"));
}
