// refused: REDscript has no hex literals
public func F() -> Int32 {
  return 0x1F;
}
