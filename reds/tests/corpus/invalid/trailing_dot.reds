// refused: `.` needs a member name
public func F(x: ref<IScriptable>) -> Void {
  x.;
}
