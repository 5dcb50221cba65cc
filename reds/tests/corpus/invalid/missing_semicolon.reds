// refused: statements end in `;`
public func F() -> Int32 {
  return 1
}
