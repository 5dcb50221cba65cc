// refused: no do-while
public func F() -> Void {
  do {
  } while true;
}
