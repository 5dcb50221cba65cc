// dialect: both
// A `;` may follow a function body and any statement ending in a block.
public func One() -> Int32 {
  return 1;
};

public func Loops(xs: array<Int32>) -> Int32 {
  let total = 0;
  if total == 0 {
    total = 1;
  };
  while total < 10 {
    total += 1;
  };
  for x in xs {
    total += x;
  };
  switch total {
    default:
      total = 0;
  };
  return total;
}
