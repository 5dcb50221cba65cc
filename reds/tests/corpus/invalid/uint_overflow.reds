// refused: 4294967296u does not fit Uint32
public func F() -> Uint32 {
  return 4294967296u;
}
