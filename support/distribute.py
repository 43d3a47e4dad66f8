"""Where train.py trains: one device (GPU:0 when TensorFlow sees one), all local GPUs, two CPU
replicas (the same code path without a GPU), or several machines described by TF_CONFIG.

    python train.py --distribute          # MirroredStrategy over local GPUs (2 CPU replicas without one)
    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}' \
        python train.py --distribute      # on each machine, with its own index

choose_strategy must run before TensorFlow creates any tensor.
"""

import contextlib
import json
import os
import socket
import time

from support.errors import InputError
from support.tf_import import tf

WAIT_FOR_WORKERS = 300  # seconds; machines of a cluster are rarely started in the same minute
POLL_SECONDS = 5  # between "waiting for" lines


def read_tf_config():
    """(this worker's index, [every worker's host:port]) from TF_CONFIG, or a clear error."""
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        workers, index = config["cluster"]["worker"], int(config["task"]["index"])
        assert config["task"]["type"] == "worker" and 0 <= index < len(workers)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise InputError('TF_CONFIG must look like {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": N}} with N one of the workers')
    return index, workers


def join_workers(wait_seconds):
    """MultiWorkerMirroredStrategy once every worker in TF_CONFIG has started, or a clear error.

    TensorFlow waits for missing workers inside C++, silently, for as long as it takes and deaf
    to Ctrl-C. So the workers meet here first: each listens on its own TF_CONFIG address and
    waits, saying for whom, until every other one listens too, then hands the address over to
    TensorFlow, which then finds them all.
    """
    index, workers = read_tf_config()
    port = int(workers[index].rpartition(":")[2])
    try:
        server = socket.create_server(("", port))
    except OSError as error:
        raise InputError(f"worker {index} cannot listen on port {port} ({error.strerror})")
    server.setblocking(False)
    start = time.time()
    shown = start - POLL_SECONDS
    with server:
        while silent := [address for i, address in enumerate(workers) if i != index and not listening(address)]:
            waited = time.time() - start
            if waited >= wait_seconds:
                raise InputError(f"no worker listening at {', '.join(silent)} after {wait_seconds} s; "
                                 "start train.py on each machine of TF_CONFIG, or raise --wait-for-workers")
            if time.time() - shown >= POLL_SECONDS:
                print(f"worker {index}: waiting for {', '.join(silent)} ({waited:.0f} of {wait_seconds} s)", flush=True)
                shown = time.time()
            with contextlib.suppress(BlockingIOError):  # the others' probes: accept and hang up
                while True:
                    server.accept()[0].close()
            time.sleep(0.2)
    print(f"worker {index}: all {len(workers)} workers are up", flush=True)
    return tf.distribute.MultiWorkerMirroredStrategy(), index


def listening(address):
    """Whether something accepts TCP connections at host:port."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except (OSError, ValueError):
        return False


def work_around_keras_multi_worker(model, sample_batch):
    """Let model.fit run under MultiWorkerMirroredStrategy, which Keras 3.15 breaks in two places.

    Keras builds the model from a sample batch that it averages across workers, and averages
    each step's metrics along an axis that scalars do not have (keras-team/keras#20585). The
    model is built here from a local batch instead, and metrics become 1-element vectors.
    """
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=sample_batch)
    model._maybe_symbolic_build = lambda **_: None
    for name in ("train_step", "test_step"):
        step = getattr(model, name)
        setattr(model, name, lambda data, step=step: {k: tf.reshape(v, [1]) for k, v in step(data).items()})


def choose_strategy(distribute, wait_seconds=WAIT_FOR_WORKERS):
    """(strategy, whether this process writes the results) for --distribute or not."""
    gpus = tf.config.list_physical_devices("GPU")
    worker = 0
    if distribute and "TF_CONFIG" in os.environ:
        strategy, worker = join_workers(wait_seconds)
    elif distribute and not gpus:
        # No GPU: split the CPU into two logical devices, which exercises the same code path.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    elif distribute:
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()  # the default: one device, GPU:0 if there is one
    devices = [d.name for d in tf.config.list_physical_devices("GPU")] or ["CPU"]
    print(f"Training on {', '.join(devices)}" + (f" with {strategy.num_replicas_in_sync} replicas"
                                                 if distribute else "")
          + ("" if gpus else " (TensorFlow sees no GPU)")
          + (f" as worker {worker} of a multi-worker cluster" if "TF_CONFIG" in os.environ and distribute else ""))
    return strategy, worker == 0


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

