// expect: forbidden-class
public func Dump() -> Void {
  let fs = new FileSystemStorage();
}
