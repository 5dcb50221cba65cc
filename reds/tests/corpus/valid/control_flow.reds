// dialect: both
// Every statement form both compilers share.
public func Flow(xs: array<Int32>, level: Int32) -> Int32 {
  let total: Int32;
  let count: Int32 = 0;
  let other = 1;
  if level > 2 {
    total = 3;
  } else if level > 1 {
    total = 2;
  } else if level == 1 {
    total = 1;
  } else {
    total = 0;
  }
  while count < 3 {
    count += 1;
    if count == 2 {
      break;
    }
  }
  for x in xs {
    total += x;
  }
  switch level {
    case 0:
    case 1:
      total += 1;
      break;
    case 2:
      total += 2;
    default:
      total += other;
  }
  return total;
}

public func Nothing() -> Void {
  return;
}
