// `--help` (and `-h`) prints usage, the flags and every registered pass, exit 0.
//
// RUN: oi-opt --help | filecheck %s
// RUN: oi-opt -h | filecheck %s
// A plugin's passes are listed too, with their options.
// RUN: oi-opt --load-pass-plugin=%examples/custom_pass.py --help | filecheck %s --check-prefix=PLUGIN

// CHECK:      usage: oi-opt
// CHECK-DAG:  --split-input-file
// CHECK-DAG:  --verify-diagnostics
// CHECK-DAG:  --print-ir-after-all
// CHECK-DAG:  --time-passes
// CHECK-DAG:  --mlir-print-op-generic
// CHECK-DAG:  --mlir-print-debuginfo
// CHECK-DAG:  --load-pass-plugin
// CHECK-DAG:  -p PIPELINE, --pass-pipeline PIPELINE
// CHECK-DAG:  -o OUTPUT, --output OUTPUT
// CHECK:      passes (run in the order given
// CHECK-NEXT:   --assign-state-slots {{.*}}
// CHECK-NEXT:   --bind-sizes {{.*}}
// CHECK-NEXT:     NAME: int (any number of sizes)
// CHECK-NEXT:     model: str
// CHECK-NEXT:   --cache {{.*}}
// CHECK-NEXT:   --canonicalize {{.*}}
// CHECK-NEXT:   --convert-graph-to-tables {{.*}}
// CHECK-NEXT:   --cse {{.*}}
// CHECK-NEXT:   --dce {{.*}}
// CHECK-NEXT:   --double-buffer {{.*}}
// CHECK-NEXT:   --gpu-emulate {{.*}}
// CHECK-NEXT:   --launch-op-kernels {{.*}}
// CHECK-NEXT:   --lower-cache {{.*}}
// CHECK-NEXT:   --lower-nests {{.*}}
// CHECK-NEXT:   --lower-ops {{.*}}
// CHECK-NEXT:     device: str = 'cpu' {{.*}}
// CHECK-NEXT:   --lower-table-storage {{.*}}
// CHECK-NEXT:   --lower-tables {{.*}}
// CHECK-NEXT:   --lower-undo-log {{.*}}
// CHECK-NEXT:   --map-gpu {{.*}}
// CHECK-NEXT:   --place-buffers {{.*}}
// CHECK-NEXT:   --tile {{.*}}
// CHECK-NOT:  unroll-constant-loops

// PLUGIN:      passes (run in the order given
// PLUGIN:        --unroll-constant-loops  Unroll oi.loop ops with literal bounds
// PLUGIN-NEXT:     max_trip_count: int = 64
