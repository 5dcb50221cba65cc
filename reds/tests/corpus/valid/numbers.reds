// dialect: both
// Decimal integers with suffixes and the float forms both compilers lex.
public func Numbers() -> Float {
  let a = 5;
  let b = 5u;
  let c = 5l;
  let d = 5ul;
  let e = 0;
  let f = -2147483647;
  let g = 1.;
  let h = 1.25;
  let i = 2.5d;
  let j = 5d;
  return h;
}
