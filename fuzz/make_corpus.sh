#!/usr/bin/env bash
# Remakes the committed seed corpora under fuzz/corpus/ from the repository's fixtures,
# configs and recipes, and (for the HDF5 files) from tiny models the CLI makes. Usage:
#   fuzz/make_corpus.sh [path/to/sparsebridge]     (default: .build/release/sparsebridge)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/sparsebridge}
C=fuzz/corpus
FIX=Tests/fixtures
rm -rf "$C" && mkdir -p "$C"/{safetensors,hdf5-files,json,tokenizer,torch}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# JSON: the shipped config and recipes, and a config that sets every field.
cp configs/tiny.json "$C/json/tiny-config.json"
cp models/recipes/dense.json "$C/json/dense-recipe.json"
cp models/recipes/sparse.json "$C/json/sparse-recipe.json"
cat > "$C/json/all-fields-config.json" <<'JSON'
{"n_layer": 1, "d_model": 8, "n_head": 2, "d_head": 3, "d_mlp": 16, "n_ctx": 8, "vocab": 128, "norm": "rms",
 "activation": "relu", "positional": "none", "attention_sink": true, "bigram_table": true, "afrac": 0.25,
 "afrac_locations": ["attn_in", "mlp_neuron"], "tied_unembed": true, "bias": false, "norm_eps": 1e-6}
JSON

# HDF5: a model, an activation file and a bridge, all tiny.
echo '{"n_layer": 1, "d_model": 8, "n_head": 2, "d_mlp": 16, "n_ctx": 8, "vocab": 128}' > "$work/a.json"
echo '{"n_layer": 1, "d_model": 4, "n_head": 1, "d_mlp": 8, "n_ctx": 8, "vocab": 128, "afrac": 0.5}' > "$work/b.json"
"$BIN" init --config "$work/a.json" --seed 1 --out "$work/dense.h5" >/dev/null
"$BIN" init --config "$work/b.json" --seed 2 --out "$work/sparse.h5" >/dev/null
"$BIN" capture --model "$work/dense.h5" --sites blocks.0.hook_resid_post --corpus synthetic --tokens 16 --seq-len 8 --gzip \
    --out "$work/acts.h5" --threads 1 >/dev/null
"$BIN" fit --dense "$work/dense.h5" --sparse "$work/sparse.h5" --tokens 64 --seq-len 8 --sites blocks.0.hook_resid_post \
    --ridge 0.01 --out "$work/bridge.h5" --threads 1 >/dev/null
cp "$work/dense.h5" "$C/hdf5-files/model.h5"
cp "$work/acts.h5" "$C/hdf5-files/activations.h5"
cp "$work/bridge.h5" "$C/hdf5-files/bridge.h5"

# safetensors: the fixtures (BF16) and an F32 export.
cp "$FIX/circuit_sparsity/tiny_bf16.safetensors" "$C/safetensors/tiny_bf16.safetensors"
cp "$FIX/circuit_sparsity/tied/final_model.safetensors" "$C/safetensors/tied.safetensors"
"$BIN" export safetensors --model "$work/sparse.h5" --out "$C/safetensors/sparse-f32.safetensors" >/dev/null

# torch: the fixtures, including the pickle that tries to call a forbidden global.
cp "$FIX/circuit_sparsity/tiny_bf16.pt" "$C/torch/tiny_bf16.pt"
cp "$FIX/circuit_sparsity/tied/final_model.pt" "$C/torch/tied.pt"
cp "$FIX/circuit_sparsity/malicious.pt" "$C/torch/malicious.pt"

# tokenizer: texts, and "tokenizer JSON \0 encoder.json \0 vocab.bpe" descriptions.
printf 'def f(x):\n    return x + 1\n' > "$C/tokenizer/code.txt"
printf 's = "it\x27s" + [1, 2]\n\tprint(s)  # caf\xc3\xa9 \xe2\x82\xac\r\n' > "$C/tokenizer/mixed.txt"
printf '{"kind": "char", "vocab": 128}\0\0' > "$C/tokenizer/char.desc"
printf '{"kind": "ids", "vocab": 64}\0\0' > "$C/tokenizer/ids.desc"
{ printf '{"kind": "bpe", "name": "tinypython_2k", "pattern": "%s", "special_tokens": {"<|endoftext|>": 200}}\0' \
    '[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'
  cat "$FIX/bpe/encoder.json"; printf '\0'; cat "$FIX/bpe/vocab.bpe"; } > "$C/tokenizer/bpe.desc"

du -sh "$C"
