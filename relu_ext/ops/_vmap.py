"""Batching rules (torch.vmap) for relu_ext's operators.

The ops are elementwise in x with one set of K units, so:

- batched x (or x and grad) under shared units: one call on the whole
  batch, since the batch dimension is just more elements. This is vmap over
  inputs, jacrev's and jacfwd's batch of basis vectors, per-sample gradients
  of the inputs. With per-channel (C, K) units x is (outer, C, inner) and the
  batch folds into outer: (B, outer, C, inner) is (B·outer, C, inner).
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


def _fold_batch(t, d, size, per_channel):
    """A batched x (or grad) as one unbatched input of the op: batch first,
    and for per-channel units folded into x's outer dim (a view when t allows)."""
    t = _to_front(t, d, size)
    return t.flatten(0, 1) if per_channel else t


def _unfold_batch(t, size, per_channel):
    """The inverse of _fold_batch on a result of the op."""
    return t.view(size, t.shape[0] // max(size, 1), *t.shape[1:]) if per_channel else t


def _foldable(x, x_dim, m):
    """Whether x's batch folds into the op's input: shared units, or
    per-channel units with a (batched) 3-D x; anything else goes entry by
    entry, where the op itself says what is wrong."""
    return m.dim() != 2 or x.dim() - (x_dim is not None) == 3


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
        if all(d is None for d in unit_dims) and _foldable(x, x_dim, m):
            if m.dim() != 2:
                return op(x, m, b, a), x_dim
            size = _batch_size((x,), (x_dim,))
            y = op(_fold_batch(x, x_dim, size, True), m, b, a)
            return _unfold_batch(y, size, True), 0
        return _per_entry(op, (x, m, b, a), in_dims)


def _register_backward(name):
    """relu_sum_backward, relu_sum_breakpoints_backward: (grad, x, m, b, a, mask) -> grads."""
    op = getattr(_ops, name)

    @torch.library.register_vmap(f"relu_ext::{name}")
    def _rule(info, in_dims, grad, x, m, b, a, output_mask):
        grad_dim, x_dim, *unit_dims = in_dims[:5]
        if (all(d is None for d in unit_dims) and not any(output_mask[1:])
                and _foldable(x, x_dim, m)):
            # dx alone is elementwise: the batch is more elements.
            size = _batch_size((grad, x), (grad_dim, x_dim))
            per_channel = m.dim() == 2
            dx = op(_fold_batch(grad, grad_dim, size, per_channel).contiguous(),
                    _fold_batch(x, x_dim, size, per_channel), m, b, a, output_mask)[0]
            dx = _unfold_batch(dx, size, per_channel)
            return (dx, None, None, None), (0, None, None, None)
        return _per_entry(op, (grad, x, m, b, a), in_dims[:5], extra=(output_mask,))


# relu_sum_auto (a composite) needs a rule of its own: without one, vmap
# takes its per-sample fallback instead of decomposing it. On the whole batch
# (shared units) it chooses by the size of what it runs: all the entries.
for _name in ("relu_sum", "relu_sum_breakpoints", "relu_sum_auto", "step_sum"):
    _register_sum_over_units(_name)
for _name in ("relu_sum_backward", "relu_sum_breakpoints_backward"):
    _register_backward(_name)
