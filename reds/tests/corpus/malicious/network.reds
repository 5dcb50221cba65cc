// expect: forbidden-class
public func Exfil(data: String) -> Void {
  let req = new HttpRequest();
}
