"""Batching rules (torch.vmap) for relu_ext's operators.

The ops are elementwise in x with one set of K units, so:

- batched x (or x and grad) under shared units: one call on the whole
  batch, since the batch dimension is just more elements. This is vmap over
  inputs, jacrev's and jacfwd's batch of basis vectors, per-sample gradients
  of the inputs.
- batched units (an ensemble: ``torch.func.stack_module_state`` +
  ``vmap(functional_call)``), or sums over inputs per batch entry
  (relu_sum_backward's dm, db, da): each entry is a separate sum, so the rule
  calls the fused op once per entry and stacks the results: B kernel calls
  of the full size, with no per-sample fallback warning.
"""

import torch

_ops = torch.ops.relu_ext


def _batch_size(args, in_dims):
    return next(t.shape[d] for t, d in zip(args, in_dims) if d is not None and t is not None)


def _to_front(t, d, size):
    """t with its batch dimension first; an unbatched t expanded to `size` (a view)."""
    if t is None:
        return None
    if d is None:
        return t.expand(size, *t.shape)
    return t.movedim(d, 0)


def _per_entry(op, tensors, in_dims, extra=()):
    """op on each batch entry; the results' tensors stacked along dim 0."""
    size = _batch_size(tensors, in_dims)
    tensors = [t if d is None or t is None else t.movedim(d, 0) for t, d in zip(tensors, in_dims)]
    if size == 0:
        return _empty_batch(op, tensors, in_dims, extra)
    results = [
        op(*[t if d is None or t is None else t[i] for t, d in zip(tensors, in_dims)], *extra)
        for i in range(size)
    ]
    if isinstance(results[0], torch.Tensor):
        return torch.stack(results), 0
    stacked = tuple(None if r is None else torch.stack(list(rs))
                    for r, rs in zip(results[0], zip(*results)))
    return stacked, tuple(None if r is None else 0 for r in stacked)


def _empty_batch(op, tensors, in_dims, extra):
    """An empty batch: op's results for no entries, shaped by running op on
    one entry's shapes on the meta device (the fake kernels)."""
    device = next(t.device for t in tensors if t is not None)
    entry = [None if t is None else torch.empty(t.shape if d is None else t.shape[1:],
                                                dtype=t.dtype, device="meta")
             for t, d in zip(tensors, in_dims)]
    result = op(*entry, *extra)

    def empty(r):
        return torch.empty((0, *r.shape), dtype=r.dtype, device=device)

    if isinstance(result, torch.Tensor):
        return empty(result), 0
    stacked = tuple(None if r is None else empty(r) for r in result)
    return stacked, tuple(None if r is None else 0 for r in stacked)


def _register_sum_over_units(name):
    """relu_sum, relu_sum_breakpoints, relu_sum_auto, step_sum: (x, m, b, a-or-w) -> y."""
    op = getattr(_ops, name)

    @torch.library.register_vmap(f"relu_ext::{name}")
    def _rule(info, in_dims, x, m, b, a):
        x_dim, *unit_dims = in_dims
        if all(d is None for d in unit_dims):
            return op(x, m, b, a), x_dim
        return _per_entry(op, (x, m, b, a), in_dims)


def _register_backward(name):
    """relu_sum_backward, relu_sum_breakpoints_backward: (grad, x, m, b, a, mask) -> grads."""
    op = getattr(_ops, name)

    @torch.library.register_vmap(f"relu_ext::{name}")
    def _rule(info, in_dims, grad, x, m, b, a, output_mask):
        grad_dim, x_dim, *unit_dims = in_dims[:5]
        if all(d is None for d in unit_dims) and not any(output_mask[1:]):
            # dx alone is elementwise: the batch is more elements.
            size = _batch_size((grad, x), (grad_dim, x_dim))
            dx = op(_to_front(grad, grad_dim, size).contiguous(), _to_front(x, x_dim, size),
                    m, b, a, output_mask)[0]
            return (dx, None, None, None), (0, None, None, None)
        return _per_entry(op, (grad, x, m, b, a), in_dims[:5], extra=(output_mask,))


# relu_sum_auto (a composite) needs a rule of its own: without one, vmap
# takes its per-sample fallback instead of decomposing it. On the whole batch
# (shared units) it chooses by the size of what it runs: all the entries.
for _name in ("relu_sum", "relu_sum_breakpoints", "relu_sum_auto", "step_sum"):
    _register_sum_over_units(_name)
for _name in ("relu_sum_backward", "relu_sum_breakpoints_backward"):
    _register_backward(_name)
