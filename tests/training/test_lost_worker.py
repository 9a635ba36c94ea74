"""Naming the lost peer of a multi-worker run from TensorFlow's error text (the texts below are
what TF 2.21 raised on worker 0 when worker 1 was SIGKILLed; the end-to-end run is the slow
test in test_distribute.py)."""

import types

import pytest
import tensorflow as tf

from cma_tf.training.loop import lost_worker_message
from cma_tf.training.strategy import describe_lost_peer

RESET = (
    "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/replica:0/task:0/device:CPU:0}} "
    "Collective ops is aborted by: recvmsg:Connection reset by peer\nAdditional GRPC error information from remote "
    "target /job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RecvBuf:\n:UNKNOWN:Error received "
    "from peer  {grpc_status:14, grpc_message:\"recvmsg:Connection reset by peer\"}\nThe error could be from a "
    "previous operation. Restart your program to reset. [Op:CollectiveReduceV2] name: "
)
HEARTBEATS = (
    "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/replica:0/task:0/device:CPU:0}} "
    "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped "
    "sending heartbeats):\n/job:worker/replica:0/task:2\nThe tasks have crashed. Check the task logs for an earlier "
    "error, or scheduler events (e.g. preemption, eviction) to debug further.\nThe error could be from a previous "
    "operation. Restart your program to reset. [Op:CollectiveReduceV2] name: "
)
UNNAMED = "Collective ops is aborted by: Socket closed\nThe error could be from a previous operation."
WORKERS = ["127.0.0.1:1111", "127.0.0.1:2222", "127.0.0.1:3333"]


def strategy_of(workers, index):
    spec = tf.train.ClusterSpec({"worker": workers})
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(spec, task_type="worker", task_id=index)
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize("text, workers, me, expected", [
    (RESET, WORKERS[:2], 0, "worker 1 (127.0.0.1:2222)"),  # the gRPC call's remote target
    (RESET, WORKERS, 0, "worker 1 (127.0.0.1:2222)"),
    (HEARTBEATS, WORKERS, 0, "worker 2 (127.0.0.1:3333)"),  # the unhealthy list, not the reporter
    (UNNAMED, WORKERS[:2], 1, "worker 0 (127.0.0.1:1111)"),  # two workers: the other one
    (UNNAMED, WORKERS, 0, "one of worker 1 (127.0.0.1:2222), worker 2 (127.0.0.1:3333)"),
])
def test_the_lost_peer_is_named_with_its_address(text, workers, me, expected):
    assert describe_lost_peer(strategy_of(workers, me), tf.errors.UnavailableError(None, None, text)) == expected


def test_the_line_names_the_last_finished_epoch_and_what_to_do():
    assert lost_worker_message("worker 1 (127.0.0.1:2222)", 2, 6) == (
        "lost worker 1 (127.0.0.1:2222): it stopped answering during epoch 3 of 6; the last finished epoch is 2: "
        "run the same command again on every worker to resume from there"
    )
    assert "no epoch had finished" in lost_worker_message("worker 1", 0, 6)
    assert "after the last epoch (6) had finished" in lost_worker_message("worker 1", 6, 6)
