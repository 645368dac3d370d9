;; A tree ensemble's row scored by its false nodes (runtimes/onnx/forest-scorer.ts; runtimes/onnx/README.md,
;; "Compiled tree ensembles"). `npm run gen:forest-scorer` compiles this file into forest-scorer.wasm.ts.
;;
;; Memory, laid out by forest-scorer.ts (addresses in bytes, little-endian):
;; - from 0: the row, `width` f32 values (written before each call; never NaN);
;; - `bits`: one i64 per tree, the leaves still reachable (bit i: the tree's i-th leaf from the left);
;; - `start`: per feature, the address of its first node, then one more (the end of the last feature's nodes);
;; - `leafBase`: per tree, the address of its leftmost leaf's weight (f32, the tree's leaves left to right);
;; - the nodes, 16 bytes each: [threshold f32, the address of its tree's word in `bits` i32, mask i64], each
;;   feature's in ascending order of threshold; the mask clears the leaves of the node's true subtree.
(module
  (memory (export "memory") 1)
  (func (export "score") (param $width i32) (param $trees i32) (param $bits i32) (param $start i32) (param $leafBase i32) (result f32)
    (local $f i32) (local $v f32) (local $p i32) (local $end i32) (local $t i32) (local $sum f32)
    ;; Every leaf reachable.
    (memory.fill (local.get $bits) (i32.const 255) (i32.shl (local.get $trees) (i32.const 3)))
    ;; Per feature, the nodes whose threshold is below the row's value (their test, value <= threshold, is false):
    ;; each one's true subtree cannot hold the exit leaf.
    (block $features_done
      (loop $features
        (br_if $features_done (i32.ge_u (local.get $f) (local.get $width)))
        (local.set $v (f32.load (i32.shl (local.get $f) (i32.const 2))))
        (local.set $p (i32.load (i32.add (local.get $start) (i32.shl (local.get $f) (i32.const 2)))))
        (local.set $end (i32.load offset=4 (i32.add (local.get $start) (i32.shl (local.get $f) (i32.const 2)))))
        (block $nodes_done
          (loop $nodes
            (br_if $nodes_done (i32.ge_u (local.get $p) (local.get $end)))
            (br_if $nodes_done (i32.eqz (f32.gt (local.get $v) (f32.load (local.get $p)))))
            (local.set $t (i32.load offset=4 (local.get $p)))
            (i64.store (local.get $t) (i64.and (i64.load (local.get $t)) (i64.load offset=8 (local.get $p))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $nodes)))
        (local.set $f (i32.add (local.get $f) (i32.const 1)))
        (br $features)))
    ;; Each tree's exit leaf is its leftmost leaf still reachable; the weights added tree by tree in f32.
    (local.set $t (i32.const 0))
    (block $trees_done
      (loop $each_tree
        (br_if $trees_done (i32.ge_u (local.get $t) (local.get $trees)))
        (local.set $sum
          (f32.add (local.get $sum)
            (f32.load
              (i32.add
                (i32.load (i32.add (local.get $leafBase) (i32.shl (local.get $t) (i32.const 2))))
                (i32.shl
                  (i32.wrap_i64 (i64.ctz (i64.load (i32.add (local.get $bits) (i32.shl (local.get $t) (i32.const 3))))))
                  (i32.const 2))))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $each_tree)))
    (local.get $sum)))
