"""What a tensor of a safetensors file is, from its name, dtype and rank (no Keras config).

A safetensors file names its tensors (``model.layers.0.mlp.up_proj.weight``)
but says nothing of their layers. The rule, first match wins (docs/files.md):

==========  ===============  =====================================================
role        kind             when
==========  ===============  =====================================================
packed      other            the name ends in ``.ws_indices``, ``.ws_codebook`` or
                             ``.ws_scale`` (a part of a packed tensor, see
                             :mod:`weightshare._io._st_packed`)
integer     other            an integer or bool dtype (ids, masks, counters)
position    other            a name part holds ``position``, ``pos_emb``, ``wpe``,
                             ``rotary``, ``inv_freq`` or ``rel_pos`` (a position table)
norm        normalization    a name part holds ``norm``, or is ``ln``, ``ln_f``,
                             ``ln_1``, ``bn1``..., ``running_mean``, ``running_var``
bias        bias             the last name part is ``bias`` or ends in ``_bias``
vector      other            rank 0 or 1 (scales, gates and other vectors)
embedding   kernel           a name part holds ``embed`` or is ``wte`` (token tables)
weight      kernel           any other floating tensor of rank >= 2 (weight
                             matrices, convolution kernels, heads)
==========  ===============  =====================================================

Kind ``kernel`` is what ``cluster`` and ``prune`` target by default; the
others are targeted only when asked (``--roles bias,norm``). Name parts are
the dot-separated components, compared in lower case. Standard library only.
"""

import re

__all__ = ["ROLES", "role_of", "SKIP_REASONS"]

_PACKED = (".ws_indices", ".ws_codebook", ".ws_scale")
_POSITION = ("position", "pos_emb", "wpe", "rotary", "inv_freq", "rel_pos")
_NORM_PART = re.compile(r"^(ln|ln_f|ln_\d+|ln\d+|bn|bn\d+|running_mean|running_var)$")

#: role -> kind
ROLES = {"packed": "other", "integer": "other", "position": "other", "norm": "normalization", "bias": "bias",
         "vector": "other", "embedding": "kernel", "weight": "kernel"}

#: why a role is not a default target (printed by ``weightshare cluster`` / ``prune``)
SKIP_REASONS = {"packed": "part of a packed tensor (weightshare unpack first)",
                "integer": "integer or bool tensor", "position": "position table",
                "norm": "normalization", "bias": "bias", "vector": "rank < 2"}


def role_of(name, floating, ndim):
    """(role, kind) of the tensor `name` of rank `ndim` (`floating`: a float dtype).

    Examples
    --------
    >>> role_of("model.layers.0.mlp.up_proj.weight", True, 2)
    ('weight', 'kernel')
    >>> role_of("model.layers.0.input_layernorm.weight", True, 1)
    ('norm', 'normalization')
    >>> role_of("bert.embeddings.position_embeddings.weight", True, 2)
    ('position', 'other')
    >>> role_of("bert.embeddings.word_embeddings.weight", True, 2)
    ('embedding', 'kernel')
    >>> role_of("transformer.h.0.attn.c_attn.bias", True, 1)
    ('bias', 'bias')
    >>> role_of("model.layers.0.mlp.up_proj.weight.ws_codebook", True, 2)
    ('packed', 'other')
    """
    parts = name.lower().split(".")
    if name.endswith(_PACKED):
        role = "packed"
    elif not floating:
        role = "integer"
    elif any(p in part for part in parts for p in _POSITION):
        role = "position"
    elif any("norm" in part or _NORM_PART.match(part) for part in parts):
        role = "norm"
    elif parts[-1] == "bias" or parts[-1].endswith("_bias"):
        role = "bias"
    elif ndim < 2:
        role = "vector"
    elif any("embed" in part or part == "wte" for part in parts):
        role = "embedding"
    else:
        role = "weight"
    return role, ROLES[role]
