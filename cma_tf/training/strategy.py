"""`tf.distribute` strategies by name (`--strategy`), who the chief is, and which peer a\nmulti-worker run lost."""

import re

import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """`auto`: MirroredStrategy over all GPUs when there are two or more, else one device.
    `multi_worker` reads the cluster from the `TF_CONFIG` environment variable."""
    if name == "multi_worker":
        # Before anything initialises the TF context: collectives are configured at start-up.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The worker that writes checkpoints and logs: `chief`, or `worker` 0 in a cluster without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


# What TensorFlow's collective ops raise on the surviving workers when a peer dies.
PEER_LOST_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)
_TASK = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")
# Where TensorFlow's error text names the dead peer: the gRPC call's remote target, or the
# coordination service's list of tasks that stopped sending heartbeats.
_REMOTE_TASK = re.compile(r"remote target (/job:\w+(?:/replica:\d+)?/task:\d+)")
_UNHEALTHY_TASKS = re.compile(r"unhealthy \(stopped sending heartbeats\):\s*((?:/job:\S+\s*)+)")


def describe_lost_peer(strategy: tf.distribute.Strategy, error: Exception) -> str:
    """Names the peer whose loss `error` (one of `PEER_LOST_ERRORS`) reports, with its address
    from the cluster (`TF_CONFIG`), e.g. `worker 1 (127.0.0.1:2222)`: the task TensorFlow's
    message names (a gRPC call's remote target, or the tasks that stopped sending heartbeats),
    else every other task of the cluster (with two workers, that is the lost one)."""
    message = str(error)
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = {}  # {job: {index: address}}; a sparse cluster spec gives dicts already
    if resolver is not None:
        for job, addresses in resolver.cluster_spec().as_dict().items():
            cluster[job] = dict(addresses) if isinstance(addresses, dict) else dict(enumerate(addresses))
    me = (resolver.task_type, int(resolver.task_id)) if resolver is not None and resolver.task_type else None

    def name(job, index):
        address = cluster.get(job, {}).get(index)
        return f"{job} {index}" + (f" ({address})" if address else "")

    named = [match.group(1) for match in (_REMOTE_TASK.search(message), _UNHEALTHY_TASKS.search(message)) if match]
    peers = [(job, int(index)) for text in named for job, index in _TASK.findall(text)]
    peers = [peer for peer in dict.fromkeys(peers) if peer != me]
    if not peers:
        peers = [(job, index) for job, tasks in cluster.items() for index in sorted(tasks) if (job, index) != me]
    if not peers:
        return "a peer"
    return name(*peers[0]) if len(peers) == 1 else "one of " + ", ".join(name(*peer) for peer in peers)
