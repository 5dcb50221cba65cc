// dialect: 1.0
// Trailing commas in parameter, argument, array and import lists (1.0).
import Std.{Alpha, Beta,}

public func Take(a: Int32, b: Int32,) -> Int32 {
  let xs = [a, b,];
  return Take(a, b,);
}
