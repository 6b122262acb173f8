"""Generates the `.oi` text of an N-layer transformer decoder step (for benchmarks and tests).

Each layer projects Q/K/V through weights resolved by `@pattern`, appends K and V
to per-layer cache tables, reads the history back, scores, mixes and projects:
about 20 statements a layer, so 32 layers give some 650 statements.
"""

from __future__ import annotations


def decoder_graph_text(layers: int = 32) -> str:
    out = [
        "graph! {",
        "dynamic { x: f32[1, D]; }",
        "constant {",
        '    Wq(l): f32[D, D] @pattern("layers.{l}.wq");',
        '    Wk(l): f32[D, D] @pattern("layers.{l}.wk");',
        '    Wv(l): f32[D, D] @pattern("layers.{l}.wv");',
        '    Wo(l): f32[D, D] @pattern("layers.{l}.wo");',
        '    W1(l): f32[D, F] @pattern("layers.{l}.w1");',
        '    W2(l): f32[F, D] @pattern("layers.{l}.w2");',
        "}",
        "volatile {",
        "    h: f32[1, D]; q: f32[1, D]; k: f32[1, D]; v: f32[1, D]; a: f32[1, D];",
        "    keys: f32[T, 1, D]; values: f32[T, 1, D]; m: f32[1, F]; y: f32[1, D];",
        "}",
        "persistent {",
        "    t: i32 @init(0);",
    ]
    for i in range(layers):
        out.append(f"    K{i}(pos): f32[1, D] @table @fixed(pos = 4096);")
        out.append(f"    V{i}(pos): f32[1, D] @table @fixed(pos = 4096);")
    out += ["}", "block entry {", "    op add(x, x) >> h;"]
    for i in range(layers):
        out += [
            f"    // layer {i}",
            f"    op matmul(h, Wq[{i}]) >> q;",
            f"    op matmul(h, Wk[{i}]) >> k;",
            f"    op matmul(h, Wv[{i}]) >> v;",
            f"    cache.write k >> K{i}[t];",
            f"    cache.write v >> V{i}[t];",
            f"    cache.read K{i}[0..t] >> keys;",
            f"    cache.read V{i}[..t] >> values;",
            f"    op sum_axis(keys, axes=[0], keepdims=false) >> a;",
            f"    op mul(q, a) >> a;",
            f"    op sum_axis(values, axes=[0], keepdims=false) >> y;",
            f"    op add(a, y) >> a;",
            f"    op matmul(a, Wo[{i}]) >> y;",
            f"    op add(h, y) >> h;",
            f"    op matmul(h, W1[{i}]) >> m;",
            f"    op relu(m, alpha=0.0, clamp_max=inf) >> m;",
            f"    op matmul(m, W2[{i}]) >> y;",
            f"    op add(h, y) >> h;",
            f"    barrier;",
        ]
    out += ["    cache.increment t;", "    return;", "}", "}"]
    return "\n".join(out) + "\n"
