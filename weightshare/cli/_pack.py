"""``weightshare pack`` / ``unpack``: the smallest lossless container of a model file."""

import argparse
import textwrap

import weightshare

from ._common import json_document, print_json, printable, stdout_may_close

_FIELDS_PACK = ("dry_run", "format", "size_before", "size_after", "ratio", "regions",
                "tensor_bytes", "tensor_stored", "skeleton_bytes", "skeleton_stored")
_FIELDS_UNPACK = ("dry_run", "size_before", "size_after", "sha256")


def register(sub):
    p = sub.add_parser(
        "pack", help="pack a model file into the smallest lossless container (.wsz)",
        description=textwrap.fill(
            "Write OUT, a .wsz pack of MODEL: every floating-point tensor stored with encode's "
            "smallest scheme (a clustered tensor costs its codebook and about its entropy in "
            "bits per entry, a pruned one its non-zeros; an unclustered one is deflated "
            "byte plane by byte plane), every other byte (HDF5 metadata, "
            "configs, zip structure, integer tensors) xz-compressed. 'weightshare unpack' "
            "gives MODEL back byte for byte: the pack is rebuilt in memory and checked "
            "(SHA-256) before it is written, and a file that cannot be reproduced exactly is "
            "refused. Takes .keras, .weights.h5, legacy .h5, one .safetensors file (a sharded "
            "checkpoint: pack each shard), .npy and .npz. Format: docs/format.md.", 79),
        epilog="examples:\n"
               "  weightshare pack small.keras -o small.wsz\n"
               "  weightshare pack model.safetensors -o model.wsz --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="the file to pack")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the pack to write (.wsz by convention); required unless --dry-run")
    p.add_argument("--dry-run", action="store_true",
                   help="build and check the pack, print its size, write nothing")
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "the sizes of the file, of the pack and of its parts")
    p.set_defaults(func=run_pack)

    u = sub.add_parser(
        "unpack", help="rebuild the file a .wsz pack was made from, byte for byte",
        description=textwrap.fill(
            "Write OUT, the file PACK was made from, byte for byte. PACK is checked whole "
            "first (CRC-32s, declared sizes against its length and the limits of "
            "docs/format.md), the file is rebuilt piece by piece into a temporary file and "
            "renamed to OUT only if its SHA-256 is the one PACK declares. A truncated, "
            "damaged or foreign PACK is refused in one line; nothing is written. Give OUT "
            "the original file's suffix. PACK may also be a packed safetensors file or "
            "checkpoint ('weightshare cluster --packed'): OUT is then the plain file or "
            "folder, byte for byte what the same run without --packed writes.", 79),
        epilog="examples:\n"
               "  weightshare unpack small.wsz -o small.keras\n"
               "  weightshare unpack small.wsz --dry-run      # check the pack only\n"
               "  weightshare unpack ckpt-k16-packed/ -o ckpt-k16/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("model", metavar="PACK",
                   help="a .wsz file written by 'weightshare pack', or a packed safetensors "
                        "file, index or checkpoint folder ('weightshare cluster --packed')")
    u.add_argument("-o", "--output", metavar="OUT",
                   help="the file to rebuild; required unless --dry-run")
    u.add_argument("--dry-run", action="store_true",
                   help="rebuild and check everything, write nothing (a test of PACK)")
    u.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "the sizes and the SHA-256 of the rebuilt file")
    u.set_defaults(func=run_unpack)


def _dst(args):
    if args.output is None and not args.dry_run:
        raise ValueError("give -o OUT (or --dry-run to write nothing)")
    return args.output


def run_pack(args):
    dst = _dst(args)
    res = weightshare.pack_file(args.model, dst, dry_run=args.dry_run)
    out = None if args.dry_run else dst
    with stdout_may_close(written=out):
        if args.json:
            d = res.to_dict()
            print_json(json_document("pack", args.model, out, [],
                                     {key: d[key] for key in _FIELDS_PACK}))
            return 0
        print(printable(f"{args.model} -> {out if out else '(dry run: nothing written)'}"))
        print(f"format: {res.format}; {res.regions} tensor regions of {res.tensor_bytes} bytes "
              f"-> {res.tensor_stored} bytes; the other {res.skeleton_bytes} bytes -> "
              f"{res.skeleton_stored} bytes (xz)")
        print(f"file size: {res.size_before} -> {res.size_after} bytes "
              f"({res.ratio:.2f}x smaller; unpack gives back the file byte for byte)")
    return 0


def run_unpack(args):
    dst = _dst(args)
    res = weightshare.unpack_file(args.model, dst, dry_run=args.dry_run)
    out = None if args.dry_run else dst
    with stdout_may_close(written=out):
        if args.json:
            d = res.to_dict()
            print_json(json_document("unpack", args.model, out, [],
                                     {key: d[key] for key in _FIELDS_UNPACK}))
            return 0
        print(printable(f"{args.model} -> {out if out else '(dry run: nothing written)'}"))
        print(f"file size: {res.size_before} -> {res.size_after} bytes; SHA-256 {res.sha256} "
              "(checked)")
    return 0
