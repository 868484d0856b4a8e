"""Byte-level coding of tensors behind :func:`weightshare.encode` (NumPy only).

- :mod:`._schemes`: the encoding schemes (packed, sparse, Huffman) and their planners;
- :mod:`._huffman`: canonical Huffman codes; :mod:`._bitpack`: fixed-width bit packing;
- :mod:`._bytes`: ULEB128 fields and bounds-checked reads;
- :mod:`._bf16`: bfloat16 from and to float32 bits (round to nearest even), the one
  conversion every part of the package uses;
- :mod:`._lut`: the values a LUT stored as int8, uint8, float16, bfloat16 or float8_e4m3
  can hold (the grids ``cluster(lut_dtype=...)`` fits on).
"""
