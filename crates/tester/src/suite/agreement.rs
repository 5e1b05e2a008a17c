pub(crate) fn tests() -> Vec<super::Test> {
    Vec::new()
}
