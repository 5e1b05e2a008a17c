//! Membership changes and leadership transfer, classic style. Virtual time by default;
//! `RAFT_TEST_REALTIME=1` for the wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{classic_tests, suite::membership as s};

classic_tests! {
    grow_member => "grow 1 -> 3 -> 5 under load", s::grow;
    replace_joint_member => "replace two of three (joint consensus)", s::replace_joint;
    remove_leader_member => "remove the leader", s::remove_leader;
    transfer_member => "transfer leadership to each node in turn", s::transfer;
    learner_snapshot_member => "a learner catches up through a snapshot", s::learner_snapshot;
    learner_cannot_catch_up_member => "a learner that cannot catch up is not promoted", s::learner_cannot_catch_up;
    replace_one_by_one_member => "replace every member one by one", s::replace_one_by_one;
    shrink_member => "shrink 5 -> 3", s::shrink;
    add_partitioned_member => "add a server while a minority is partitioned", s::add_with_minority_partitioned;
    change_interrupted_member => "a joint change interrupted by a leader crash", s::change_interrupted;
    replace_all_joint_member => "replace all three at once (joint consensus)", s::replace_all_joint;
    transfer_to_dead_member => "transfer to a dead node aborts", s::transfer_to_dead;
    removed_high_term_member => "a removed server with a high term does not disrupt", s::removed_high_term;
}
