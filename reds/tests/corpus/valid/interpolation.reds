// dialect: both
// Interpolated strings, including string literals and calls inside.
public func Describe(n: Int32) -> String {
  let plain = s"no interpolation";
  let sum = s"sum: \(n + 2)";
  return s"a \(NameToString(n"x")) b \(IntToString(n)) \("inner") c" + plain + sum;
}
