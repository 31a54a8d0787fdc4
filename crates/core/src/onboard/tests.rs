//! Unit tests: option validation and request shapes against a mock API server (tower-test).

use super::*;

#[test]
fn placeholder_compiles() {
    assert!(check_subjects("john", &["marketing".into()], false).is_ok());
}
