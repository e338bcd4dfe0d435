"""fit() across processes: the process group, each rank's share of a batch,
and which rank speaks.

fit() trains with DistributedDataParallel when torch.distributed is initialized
with more than one rank. Launched by torchrun with no group initialized, it
makes one itself (gloo for CPU tensors, nccl for CUDA) and tears it down at the
end; a group the caller made is used and left alone.

The group is made on the store torchrun's agent serves at MASTER_ADDR:MASTER_PORT,
under a prefix named after TORCHELASTIC_RESTART_COUNT. After torchrun restarts
a failed group, the default ``init_process_group("gloo")`` often fails to
connect (gloo "connectFullMesh ... Connection refused": the new attempt finds
the old attempt's addresses under the same keys); the prefix gives every
attempt, and every group within it, keys of its own.
"""

import contextlib
import itertools
import os
from datetime import timedelta

import torch
import torch.distributed as dist

# Every group this process makes gets fresh store keys (see the module docstring).
_group_numbers = itertools.count()
_TIMEOUT = timedelta(minutes=10)
# C++ references to the tensors fit() all-reduces, held for the life of the process.
# A gloo worker thread drops its own reference to a collective's tensor some time
# after the collective completes; if that leaves the tensor's Python object as its
# only owner, the thread must take the GIL to release it, and if the interpreter is
# already finalizing by then (the last all-reduce of a run, a loaded machine), the
# thread is ended by pthread_exit inside a noexcept destructor: "terminate called
# without an active exception", SIGABRT at exit (seen in core dumps, torch 2.14).
# The group itself outlives destroy_process_group() here, its threads included.
_held = []


class Group:
    """The ranks training together: this rank, how many, and the two things
    fit() needs of them besides DDP's gradient all-reduce."""

    def __init__(self, rank=0, size=1):
        self.rank = rank
        self.size = size
        if size > 1:
            self._buffer = torch.zeros((), dtype=torch.float64)
            # A TorchScript list holds the tensor from C++ (a Python container
            # would not), so gloo's threads never drop its last C++ reference.
            _held.append(torch._C.ScriptList([self._buffer]))

    @property
    def is_main(self):
        """Rank 0: the one that shows progress and writes files."""
        return self.rank == 0

    def share(self, count):
        """This rank's slice of a global batch of ``count`` samples: contiguous,
        sizes differing by at most one (a batch need not divide by the size)."""
        return slice(count * self.rank // self.size, count * (self.rank + 1) // self.size)

    def sum(self, value):
        """The sum over ranks of a float, in float64."""
        if self.size == 1:
            return value
        self._buffer.fill_(value)
        dist.all_reduce(self._buffer, op=dist.ReduceOp.SUM)
        return self._buffer.item()


def launched_by_torchrun():
    """Whether this process is one of several ranks started by torchrun (or any
    launcher that sets the env:// variables) with no group initialized yet."""
    return (not (dist.is_available() and dist.is_initialized())
            and int(os.environ.get("WORLD_SIZE", "1")) > 1
            and all(k in os.environ for k in ("RANK", "MASTER_ADDR", "MASTER_PORT")))


def is_main_process():
    """Rank 0 of an initialized group, or of torchrun's ranks, or a lone process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def local_device(device):
    """Under torchrun, ``cuda`` means this rank's own GPU (cuda:LOCAL_RANK)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def restart_count():
    """How many times torchrun has restarted this group (0 on the first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def process_group(device):
    """Initializes the default process group from torchrun's environment: gloo
    for CPU tensors, nccl for CUDA ones, on a store prefix of its own."""
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    # torchrun's agent serves the store; another launcher leaves it to rank 0.
    agent_serves = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(host, port, world_size=None if agent_serves else size,
                          is_master=not agent_serves and rank == 0, timeout=_TIMEOUT)
    prefix = f"relu_ext/attempt-{restart_count()}/group-{next(_group_numbers)}"
    backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_device("cuda"))
    dist.init_process_group(backend, store=dist.PrefixStore(prefix, store), rank=rank,
                            world_size=size, timeout=_TIMEOUT)


@contextlib.contextmanager
def data_parallel(device):
    """The Group fit() trains in: the initialized one, one made from torchrun's
    environment (and destroyed on the way out), or a lone process."""
    made = launched_by_torchrun()
    if made:
        process_group(device)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        yield Group()
        return
    try:
        yield Group(dist.get_rank(), dist.get_world_size())
    except FloatingPointError:
        # Every rank stops together on a NaN loss (it is all-reduced): still in step.
        if made:
            _destroy()
        raise
    except BaseException:
        # One rank failed alone: the others may never reach a barrier, and the
        # launcher ends them; just let go of this rank's side.
        if made:
            dist.destroy_process_group()
        raise
    else:
        if made:
            _destroy()


def _destroy():
    # No rank tears its side of the group down while another still talks to it.
    dist.barrier()
    dist.destroy_process_group()
