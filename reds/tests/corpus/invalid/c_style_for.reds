// refused: no C-style for
public func F() -> Void {
  for (i = 0; i < 3; i += 1) {
  }
}
