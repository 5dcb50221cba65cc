// expect: forbidden-extends
public class Overlay extends inkGameController {
  protected cb func OnInitialize() -> Bool { return true; }
}
