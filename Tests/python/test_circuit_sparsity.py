"""circuit_sparsity checkpoints (beeg_config.json + final_model.pt, or the same state_dict as
safetensors) and GPT-2 data-gym BPE tokenizers: the committed PyTorch fixtures read bit for bit,
a malicious pickle refused, the converted model's forward pass against a NumPy reading of
circuit_sparsity's GPT, and the BPE tokenizer against tiktoken."""
import json
import os
import pathlib
import random
import shutil
import struct
import zipfile

import h5py
import numpy as np
import pytest
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from reference import circuit_sparsity_forward, circuit_sparsity_state_dict, read_safetensors, write_safetensors

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
CS, BPE = FIXTURES / "circuit_sparsity", FIXTURES / "bpe"
TINYPYTHON_PAT = r"""[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# circuit_sparsity hook names (DESIGN.md's aliases) → the TransformerLens names in activation files.
ALIASES = {"resid_in": "hook_resid_pre", "attn.act_in": "ln1.hook_normalized", "attn.q": "attn.hook_q",
           "attn.k": "attn.hook_k", "attn.v": "attn.hook_v", "attn.y": "attn.hook_z",
           "attn.resid_delta": "hook_attn_out", "resid_mid": "hook_resid_mid", "mlp.act_in": "ln2.hook_normalized",
           "mlp.post_act": "mlp.hook_post", "mlp.resid_delta": "hook_mlp_out"}


def h5_datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[:]) if isinstance(o, h5py.Dataset) else None)
    return out


def model_folder(tmp_path, name, beeg, seed, bpe=True):
    """A circuit_sparsity model folder: beeg_config.json, the state_dict as safetensors, BPE files."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "beeg_config.json").write_text(json.dumps(beeg))
    sd = circuit_sparsity_state_dict(beeg, seed)
    write_safetensors(folder / "final_model.safetensors", sd)
    if bpe:
        shutil.copy(BPE / "encoder.json", folder)
        shutil.copy(BPE / "vocab.bpe", folder)
    return folder, sd


# ---------------------------------------------------------------- the PyTorch reader

@pytest.mark.parametrize("fixture", ["tiny", "tied"])
def test_pt_fixture_converts_bit_identical_to_its_safetensors_copy(tmp_path, cli, fixture):
    from_pt, from_st = tmp_path / "pt.h5", tmp_path / "st.h5"
    cli("convert", "--from", CS / fixture / "final_model.pt", "--out", from_pt)
    st_folder = tmp_path / fixture
    st_folder.mkdir()
    shutil.copy(CS / fixture / "beeg_config.json", st_folder)
    shutil.copy(CS / fixture / "final_model.safetensors", st_folder)
    cli("convert", "--from", st_folder, "--layout", "circuit-sparsity", "--out", from_st)
    a, b = h5_datasets(from_pt), h5_datasets(from_st)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k

    # Each weight is the state_dict's tensor, nn.Linear matrices transposed to [in, out].
    sd, _ = read_safetensors(CS / fixture / "final_model.safetensors")
    beeg = json.loads((CS / fixture / "beeg_config.json").read_text())
    att = beeg["n_head"] * beeg.get("d_head", beeg["d_model"] // beeg["n_head"])
    for l in range(beeg["n_layer"]):
        p, q = f"transformer.h.{l}.", f"blocks/{l}/"
        c_attn = sd[p + "attn.c_attn.weight"]
        for i, m in enumerate("QKV"):
            assert np.array_equal(a[q + f"attn/W_{m}"], c_attn[i * att:(i + 1) * att].T)
        assert np.array_equal(a[q + "attn/W_O"], sd[p + "attn.c_proj.weight"].T)
        assert np.array_equal(a[q + "mlp/W_in"], sd[p + "mlp.c_fc.weight"].T)
        assert np.array_equal(a[q + "mlp/W_out"], sd[p + "mlp.c_proj.weight"].T)
        assert np.array_equal(a[q + "ln1/w"], sd[p + "ln_1.weight"])
        if beeg.get("sink"):
            assert np.array_equal(a[q + "attn/sink"], sd[p + "attn.attn_imp.sink_logit"])
    assert np.array_equal(a["embed/W_E"], sd["transformer.wte.weight"])
    assert np.array_equal(a["unembed/b_U"], sd["final_logits_bias"])
    if beeg.get("tied_unembed", True):
        assert "unembed/W_U" not in a
    else:
        assert np.array_equal(a["unembed/W_U"], sd["lm_head.weight"].T)
    if beeg.get("enable_bigram_table"):
        assert np.array_equal(a["bigram/table"], sd["bigram_table"])
    # The tied fixture's wpe is all zero: no positional embedding at all.
    assert ("pos_embed/W_pos" in a) == bool(sd["transformer.wpe.weight"].any())
    # Zeros stay explicit zeros.
    assert (a["blocks/0/mlp/W_in"] == 0).sum() == (sd["transformer.h.0.mlp.c_fc.weight"] == 0).sum()


def test_zip64_end_records_are_followed(tmp_path, cli):
    """torch.save writes zip64 end records beside the classic ones; with the classic record's
    directory offset set to 0xffffffff (as in archives past 4 GiB) the zip64 record must be used."""
    pt = bytearray((CS / "tiny" / "final_model.pt").read_bytes())
    eocd = pt.rfind(struct.pack("<I", 0x06054B50))
    assert pt.rfind(struct.pack("<I", 0x06064B50)) != -1  # the zip64 record torch wrote
    pt[eocd + 16:eocd + 20] = b"\xff\xff\xff\xff"
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(CS / "tiny" / "beeg_config.json", folder)
    (folder / "final_model.pt").write_bytes(bytes(pt))
    cli("convert", "--from", folder, "--out", tmp_path / "a.h5")
    cli("convert", "--from", CS / "tiny", "--out", tmp_path / "b.h5")
    a, b = h5_datasets(tmp_path / "a.h5"), h5_datasets(tmp_path / "b.h5")
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    # Without the zip64 record, the same archive is refused cleanly.
    loc = pt.rfind(struct.pack("<I", 0x07064B50))
    pt[loc:loc + 4] = b"XXXX"
    (folder / "final_model.pt").write_bytes(bytes(pt))
    r = cli("convert", "--from", folder, "--out", tmp_path / "c.h5", check=False)
    assert_clean_failure(r, "final_model.pt", "zip64 locator missing", out=tmp_path / "c.h5")


def test_bfloat16_checkpoint_reads_as_its_bf16_safetensors(tmp_path, cli):
    for name in ("tiny_bf16.pt", "tiny_bf16.safetensors"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        shutil.copy(CS / "tiny" / "beeg_config.json", folder)
        shutil.copy(CS / name, folder / ("final_model" + pathlib.Path(name).suffix))
        cli("convert", "--from", folder, "--out", tmp_path / (name + ".h5"))
    a, b = h5_datasets(tmp_path / "tiny_bf16.pt.h5"), h5_datasets(tmp_path / "tiny_bf16.safetensors.h5")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    # bfloat16 → float32 is exact: the low 16 bits are zero.
    assert not (a["embed/W_E"].view(np.uint32) & 0xFFFF).any()


def assert_clean_failure(r, *needles, out=None):
    assert r.code != 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    for n in needles:
        assert n in lines[0], lines[0]
    assert out is None or not pathlib.Path(out).exists()


def test_malicious_pickle_is_refused_without_running_it(tmp_path, cli):
    marker = pathlib.Path("/tmp/sparsebridge-pwned")
    if marker.exists():
        marker.unlink()
    out = tmp_path / "m.h5"
    r = cli("convert", "--from", CS / "malicious.pt", "--out", out, check=False)
    assert_clean_failure(r, "malicious.pt", "refused global posix.system", out=out)
    r = cli("run", "--model", CS / "malicious.pt", "--text", "x", check=False)
    assert_clean_failure(r, "refused global posix.system")
    assert not marker.exists()


def test_damaged_or_compressed_archives_are_refused(tmp_path, cli):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(CS / "tiny" / "beeg_config.json", folder)
    pt = (CS / "tiny" / "final_model.pt").read_bytes()
    out = tmp_path / "out.h5"
    # Deflated entries (a zip tool re-packed the checkpoint).
    with zipfile.ZipFile(CS / "tiny" / "final_model.pt") as src, \
            zipfile.ZipFile(folder / "final_model.pt", "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    r = cli("convert", "--from", folder, "--out", out, check=False)
    assert_clean_failure(r, "final_model.pt", "compressed", out=out)
    # Truncated: the central directory is gone.
    (folder / "final_model.pt").write_bytes(pt[: len(pt) // 2])
    r = cli("convert", "--from", folder, "--out", out, check=False)
    assert_clean_failure(r, "final_model.pt", "not a zip archive", out=out)
    # One flipped byte inside a storage fails its CRC-32.
    bad = bytearray(pt)
    with zipfile.ZipFile(CS / "tiny" / "final_model.pt") as z:
        info = z.getinfo("final_model/data/0")
    name_len, extra_len = struct.unpack("<HH", pt[info.header_offset + 26:info.header_offset + 30])
    bad[info.header_offset + 30 + name_len + extra_len + 5] ^= 0x40  # the local header pads for alignment
    (folder / "final_model.pt").write_bytes(bytes(bad))
    r = cli("convert", "--from", folder, "--out", out, check=False)
    assert_clean_failure(r, "final_model.pt", "CRC-32", out=out)


TENSOR_PAST_STORAGE = (b"\x80\x02ccollections\nOrderedDict\n)RX\x01\x00\x00\x00a"
                       b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
                       b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00Kd\x85K\x01\x85\x89"
                       b"ccollections\nOrderedDict\n)RtRs.")


@pytest.mark.parametrize("pickle_bytes,needle", [
    (b"\x80\x02)" + b"\x85" * 100 + b".", "tuples nested deeper than 32"),
    (b"\x80\x02K\x05.", "no dict of tensors"),
    (b"\x80\x02(i__builtin__\nlist\n.", "unsupported opcode 0x69 at byte 3"),
    (b"\x80\x02cbuiltins\neval\n.", "refused global builtins.eval at byte 2"),
    (b"\x80\x02}X\x01\x00\x00\x00aK\x01s.", "state_dict entry a is not a tensor"),
    (TENSOR_PAST_STORAGE, "tensor view runs past its storage"),
    (TENSOR_PAST_STORAGE[:33], "truncated at byte 30"),
])
def test_hand_made_pickles_are_refused(tmp_path, cli, pickle_bytes, needle):
    """Pickles written opcode by opcode, in a torch-style zip (data/0 holds 4 floats)."""
    pt = tmp_path / "x.pt"
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("x/data.pkl", pickle_bytes)
        z.writestr("x/byteorder", "little")
        z.writestr("x/data/0", np.zeros(4, "<f4").tobytes())
    shutil.copy(CS / "tiny" / "beeg_config.json", tmp_path)
    out = tmp_path / "o.h5"
    r = cli("convert", "--from", pt, "--out", out, check=False)
    assert_clean_failure(r, "x.pt", needle, out=out)


@pytest.mark.parametrize("change,needle", [
    ({"d_pos_emb": 4}, "d_pos_emb"),
    ({"residual_activation_type": "relu"}, "residual_activation_type"),
    ({"use_tied_aux_matrix": True}, "use_tied_aux_matrix"),
    ({"n_mlp_ratio": 4}, "unknown config field \"n_mlp_ratio\""),
    ({"afrac_loctypes": "attn_in,resid"}, "unknown location \"resid\""),
    ({"activation_type": "swish"}, "activation_type"),
    ({"n_head": 3}, "d_model 8 is not divisible by n_head 3"),
    ({"afrac": 0.05}, "keeps no entries"),
])
def test_unsupported_config_fields_are_errors(tmp_path, cli, change, needle):
    folder = tmp_path / "m"
    folder.mkdir()
    beeg = json.loads((CS / "tiny" / "beeg_config.json").read_text())
    beeg.update(change)
    (folder / "beeg_config.json").write_text(json.dumps(beeg))
    shutil.copy(CS / "tiny" / "final_model.pt", folder)
    out = tmp_path / "out.h5"
    r = cli("convert", "--from", folder, "--out", out, check=False)
    assert_clean_failure(r, "beeg_config.json", needle, out=out)


def test_unexpected_tensor_is_an_error(tmp_path, cli):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(CS / "tiny" / "beeg_config.json", folder)
    sd, _ = read_safetensors(CS / "tiny" / "final_model.safetensors")
    sd["transformer.h.0.attn.rotary.inv_freq"] = np.ones(4, np.float32)
    write_safetensors(folder / "final_model.safetensors", sd)
    r = cli("convert", "--from", folder, "--out", tmp_path / "o.h5", check=False)
    assert_clean_failure(r, "unexpected tensor transformer.h.0.attn.rotary.inv_freq")


# ---------------------------------------------------------------- forward pass

FORWARD = {
    # The paper's setup: RMSNorm, no biases, sink, bigram table, AbsTopK at every node location.
    "rms-sink-bigram-abstopk": dict(n_layer=2, d_model=16, n_head=2, d_head=6, d_mlp=32, block_size=24,
                                    vocab_size=700, rms_norm=True, bias=False, ln_bias=False, sink=True,
                                    enable_bigram_table=True, afrac=0.5, tied_unembed=False,
                                    afrac_loctypes="attn_in,attn_q,attn_k,attn_v,attn_out,mlp_in,mlp_neuron,mlp_out"),
    # GPTConfig's defaults for the rest: LayerNorm with biases, tied, AbsTopK at its 4 default places.
    "layernorm-tied-default-locations": dict(n_layer=2, d_model=16, n_head=4, block_size=24, vocab_size=660,
                                             afrac=0.25, sink=True, activation_type="relu"),
}


@pytest.mark.parametrize("name", FORWARD)
def test_forward_matches_numpy_circuit_sparsity_gpt(tmp_path, cli, name):
    beeg = FORWARD[name]
    folder, sd = model_folder(tmp_path, name, beeg, seed=3)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return 'héllo' + \"wörld\"  # ünïcode ✓\n" * 20, encoding="utf-8")
    T = beeg["block_size"]
    sites = ["0.resid_in", "final_resid"] + [f"{l}.{s}" for l in range(beeg["n_layer"]) for s in ALIASES if s != "resid_in"]
    model = tmp_path / "m.h5"
    cli("convert", "--from", folder, "--out", model)
    for source in (model, folder):  # the converted file, and the folder used directly
        acts = tmp_path / f"acts_{source.suffix or 'dir'}.h5"
        cli("capture", "--model", source, "--sites", ",".join(sites + ["logits"]), "--corpus", corpus,
            "--tokens", 3 * T, "--seq-len", T, "--out", acts)
        with h5py.File(acts, "r") as f:
            tokens = f["tokens"][:].astype(np.int64)
            enc = tiktoken.Encoding("fixture", pat_str=TINYPYTHON_PAT, special_tokens={},
                                    mergeable_ranks=data_gym_to_mergeable_bpe_ranks(str(BPE / "vocab.bpe"), str(BPE / "encoder.json")))
            assert tokens.reshape(-1).tolist() == enc.encode_ordinary(corpus.read_text(encoding="utf-8"))[:3 * T]
            ref = circuit_sparsity_forward(beeg, sd, tokens)
            for site in sites + ["logits"]:
                layer, _, leaf = site.partition(".")
                stored = {"final_resid": f"blocks.{beeg['n_layer'] - 1}.hook_resid_post", "logits": "logits"}.get(
                    site, f"blocks.{layer}.{ALIASES.get(leaf, '')}")
                got = f["sites"][stored][:]
                want = ref[site].reshape(got.shape)
                err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)
                assert err < 1e-4, f"{source}: {site}: relative error {err:.2e}"


# ---------------------------------------------------------------- BPE tokenizer

def varied_lines(cli, n_random=1500):
    """Synthetic code, multilingual text, and random strings over tricky code points."""
    code = cli("tasks", "corpus", "--seed", "1", "--chars", "60000").out.split("\n")
    text = (BPE / "make_bpe.py").read_text(encoding="utf-8").split("\n")
    rng = random.Random(5)
    alphabet = (list(" \t\r\n\u00a0\u2003\u3000.,;:'\"()[]{}#=+-*/\\_<>|!?$%&@^~`") + list("abcXYZ0123456789")
                + list("éßøñçÆŒ") + list("αβγЖжщ") + list("日本語中文한국어") + list("٣٤५६") + list("🙂🚀👍🏽\u200d\ufe0f")
                + ["\u0301", "\u0308", "'s", "'ll", "'re", "\r\n", "  ", "\t\t"])
    rand = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(n_random)]
    # One line of every code point 0x20..0x2FF too (Latin-1 supplement and extensions).
    return [l for l in code + text + rand if "\n" not in l] + ["".join(map(chr, range(0x20, 0x300)))]


@pytest.mark.parametrize("tokenizer_name,pattern", [("tinypython_2k", TINYPYTHON_PAT), ("other_bpe", GPT2_PAT)])
def test_bpe_matches_tiktoken(tmp_path, cli, tokenizer_name, pattern):
    beeg = dict(FORWARD["layernorm-tied-default-locations"], tokenizer_name=tokenizer_name)
    folder, _ = model_folder(tmp_path, "m", beeg, seed=1)
    enc = tiktoken.Encoding("fixture", pat_str=pattern, special_tokens={"<|endoftext|>": 656},
                            mergeable_ranks=data_gym_to_mergeable_bpe_ranks(str(BPE / "vocab.bpe"), str(BPE / "encoder.json")))
    lines = varied_lines(cli)
    text_file = tmp_path / "lines.txt"
    text_file.write_text("\n".join(lines), encoding="utf-8", newline="")
    r = cli("tokenize", "--model", folder, "--file", text_file, "--lines")
    records = [json.loads(l) for l in r.out.strip().split("\n")]
    assert len(records) == len(lines) >= 3000
    mismatches = [l for l, rec in zip(lines, records) if rec["tokens"] != enc.encode_ordinary(l)]
    assert not mismatches, f"{len(mismatches)} of {len(lines)} lines differ, e.g. {mismatches[:3]!r}"
    assert all(rec["decoded"] == l for l, rec in zip(lines, records))
    # The whole file at once (newlines inside pieces), and the special token decoding to its name.
    whole = json.loads(cli("tokenize", "--model", folder, "--file", text_file, "--json").out)
    raw = text_file.read_bytes().decode("utf-8")  # read_text would turn \r and \r\n into \n
    assert whole["tokens"] == enc.encode_ordinary(raw)
    assert whole["decoded"] == raw
    eot = json.loads(cli("tokenize", "--model", folder, "--text", "<|endoftext|>", "--json").out)
    assert eot["tokens"] == enc.encode_ordinary("<|endoftext|>")


def test_converted_model_carries_its_tokenizer(tmp_path, cli):
    folder, _ = model_folder(tmp_path, "m", FORWARD["layernorm-tied-default-locations"], seed=2)
    model, st, back = tmp_path / "m.h5", tmp_path / "m.safetensors", tmp_path / "back.h5"
    cli("convert", "--from", folder, "--out", model)
    with h5py.File(model, "r") as f:
        tok = json.loads(f.attrs["tokenizer"])
        assert tok["kind"] == "bpe" and tok["name"] == "tinypython_2k" and tok["pattern"] == TINYPYTHON_PAT
        assert tok["special_tokens"] == {"<|endoftext|>": 656} and tok["vocab"] == 657
        assert f["tokenizer/encoder.json"][:].tobytes() == (BPE / "encoder.json").read_bytes()
        assert f["tokenizer/vocab.bpe"][:].tobytes() == (BPE / "vocab.bpe").read_bytes()
    shutil.rmtree(folder)  # the model file alone must be enough
    text = "for x in ['αβγ', \"日本\"]:\n    print(x)  # 🙂"
    want = json.loads(cli("tokenize", "--model", model, "--text", text, "--json").out)
    cli("export", "--model", model, "--out", st)
    cli("convert", "--from", st, "--out", back)
    assert json.loads(cli("tokenize", "--model", back, "--text", text, "--json").out) == want
    assert want["decoded"] == text and len(want["tokens"]) < len(text.encode())


def test_tokenizer_files_that_disagree_are_refused(tmp_path, cli):
    folder, _ = model_folder(tmp_path, "m", FORWARD["layernorm-tied-default-locations"], seed=2)
    enc = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    first_merge = next(k for k, v in enc.items() if v == 256)
    enc[first_merge] = 300
    (folder / "encoder.json").write_text(json.dumps(enc), encoding="utf-8")
    out = tmp_path / "o.h5"
    r = cli("convert", "--from", folder, "--out", out, check=False)
    assert_clean_failure(r, "encoder.json", "does not match vocab.bpe", out=out)
