// expect: forbidden-class
public func Spawn() -> Void {
  let spec = new DynamicEntitySpec();
  spec.recordID = t"Character.Judy";
}
