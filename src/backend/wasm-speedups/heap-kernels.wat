;; Kernels working directly in the tfjs wasm backend's heap (imported as
;; env.memory), four float32 values at a time with wasm SIMD, then one at a time
;; for the rest. Pointers are byte offsets into the heap; outputs must not
;; overlap inputs. Compiled to heap-kernels-wasm.ts by `npm run build:wasm`;
;; heap-kernels.ts instantiates it.
;;
;; adam: one Adam step, the same float32 operations in the same order as tfjs'
;; AdamOptimizer (each one IEEE-rounded), so the results are its results, bit
;; for bit (n counts values):
;;   m' = m*beta1 + g*keep1                      keep1 = 1 - beta1
;;   v' = v*beta2 + (g*g)*keep2                  keep2 = 1 - beta2
;;   x' = ((m'/c1) / (sqrt(v'/c2) + eps)) * step + x     c = 1 - beta^t, step = -learningRate
;;
;; sumRows: out[c] = sum over r of x[r * columns + c], rows added in order, in
;; float32.
(module
  (import "env" "memory" (memory 0))
  (func (export "adam")
    (param $x i32) (param $m i32) (param $v i32) (param $g i32)
    (param $outX i32) (param $outM i32) (param $outV i32) (param $n i32)
    (param $beta1 f32) (param $beta2 f32) (param $keep1 f32) (param $keep2 f32)
    (param $c1 f32) (param $c2 f32) (param $eps f32) (param $step f32)
    (local $i i32) (local $vectorEnd i32) (local $at i32)
    (local $beta1x4 v128) (local $beta2x4 v128) (local $keep1x4 v128) (local $keep2x4 v128)
    (local $c1x4 v128) (local $c2x4 v128) (local $epsx4 v128) (local $stepx4 v128)
    (local $gx4 v128) (local $mx4 v128) (local $vx4 v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $beta1x4 (f32x4.splat (local.get $beta1)))
    (local.set $beta2x4 (f32x4.splat (local.get $beta2)))
    (local.set $keep1x4 (f32x4.splat (local.get $keep1)))
    (local.set $keep2x4 (f32x4.splat (local.get $keep2)))
    (local.set $c1x4 (f32x4.splat (local.get $c1)))
    (local.set $c2x4 (f32x4.splat (local.get $c2)))
    (local.set $epsx4 (f32x4.splat (local.get $eps)))
    (local.set $stepx4 (f32x4.splat (local.get $step)))
    (local.set $vectorEnd (i32.and (local.get $n) (i32.const -4)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $i) (local.get $vectorEnd)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gx4 (v128.load (i32.add (local.get $g) (local.get $at))))
        (local.set $mx4
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $at))) (local.get $beta1x4))
            (f32x4.mul (local.get $gx4) (local.get $keep1x4))))
        (local.set $vx4
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $at))) (local.get $beta2x4))
            (f32x4.mul (f32x4.mul (local.get $gx4) (local.get $gx4)) (local.get $keep2x4))))
        (v128.store (i32.add (local.get $outM) (local.get $at)) (local.get $mx4))
        (v128.store (i32.add (local.get $outV) (local.get $at)) (local.get $vx4))
        (v128.store (i32.add (local.get $outX) (local.get $at))
          (f32x4.add
            (f32x4.mul
              (f32x4.div
                (f32x4.div (local.get $mx4) (local.get $c1x4))
                (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vx4) (local.get $c2x4))) (local.get $epsx4)))
              (local.get $stepx4))
            (v128.load (i32.add (local.get $x) (local.get $at)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vectors)))
    (block $scalarsDone
      (loop $scalars
        (br_if $scalarsDone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $at))))
        (local.set $ms
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $m) (local.get $at))) (local.get $beta1))
            (f32.mul (local.get $gs) (local.get $keep1))))
        (local.set $vs
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $v) (local.get $at))) (local.get $beta2))
            (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $keep2))))
        (f32.store (i32.add (local.get $outM) (local.get $at)) (local.get $ms))
        (f32.store (i32.add (local.get $outV) (local.get $at)) (local.get $vs))
        (f32.store (i32.add (local.get $outX) (local.get $at))
          (f32.add
            (f32.mul
              (f32.div
                (f32.div (local.get $ms) (local.get $c1))
                (f32.add (f32.sqrt (f32.div (local.get $vs) (local.get $c2))) (local.get $eps)))
              (local.get $step))
            (f32.load (i32.add (local.get $x) (local.get $at)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scalars))))
  (func (export "sumRows") (param $x i32) (param $rows i32) (param $columns i32) (param $out i32)
    (local $r i32) (local $c i32) (local $row i32) (local $vectorEnd i32) (local $at i32)
    (local.set $vectorEnd (i32.and (local.get $columns) (i32.const -4)))
    ;; out = 0
    (block $zeroed
      (loop $zero
        (br_if $zeroed (i32.ge_u (local.get $c) (local.get $vectorEnd)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))) (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $zero)))
    (block $zeroedRest
      (loop $zeroRest
        (br_if $zeroedRest (i32.ge_u (local.get $c) (local.get $columns)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))) (f32.const 0))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $zeroRest)))
    ;; out += each row
    (local.set $row (local.get $x))
    (block $rowsDone
      (loop $rowsLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $vectorsDone
          (loop $vectors
            (br_if $vectorsDone (i32.ge_u (local.get $c) (local.get $vectorEnd)))
            (local.set $at (i32.shl (local.get $c) (i32.const 2)))
            (v128.store (i32.add (local.get $out) (local.get $at))
              (f32x4.add
                (v128.load (i32.add (local.get $out) (local.get $at)))
                (v128.load (i32.add (local.get $row) (local.get $at)))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $vectors)))
        (block $scalarsDone
          (loop $scalars
            (br_if $scalarsDone (i32.ge_u (local.get $c) (local.get $columns)))
            (local.set $at (i32.shl (local.get $c) (i32.const 2)))
            (f32.store (i32.add (local.get $out) (local.get $at))
              (f32.add
                (f32.load (i32.add (local.get $out) (local.get $at)))
                (f32.load (i32.add (local.get $row) (local.get $at)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $scalars)))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $columns) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowsLoop)))))
