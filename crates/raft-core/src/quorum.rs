//! Majority arithmetic, kept apart so that joint configurations can replace it in one
//! place.

use crate::types::Index;

/// True when `count` of `voters` voters make a majority.
pub(crate) fn has_majority(voters: usize, count: usize) -> bool {
    count > voters / 2
}

/// The highest index that a majority of `matched` (one entry per voter) have reached.
pub(crate) fn committed_index(mut matched: Vec<Index>) -> Index {
    if matched.is_empty() {
        return 0;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[matched.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert!(has_majority(1, 1));
        assert!(!has_majority(3, 1));
        assert!(has_majority(3, 2));
        assert!(!has_majority(4, 2));
        assert!(has_majority(5, 3));
    }

    #[test]
    fn committed_is_the_majority_median() {
        assert_eq!(committed_index(vec![5]), 5);
        assert_eq!(committed_index(vec![5, 3, 1]), 3);
        assert_eq!(committed_index(vec![5, 4, 3, 1]), 3);
        assert_eq!(committed_index(vec![9, 9, 1, 1, 1]), 1);
        assert_eq!(committed_index(vec![9, 9, 7, 1, 1]), 7);
    }
}
