// Ink widget construction with casts, loops and switches.
enum PanelKind {
  Horizontal,
  Vertical = 3,
  Canvas = -1,
}

struct PanelSpec {
  let kind: PanelKind;
  let size: Vector2;
  let tint: HDRColor;
}

public abstract class PanelBuilder extends inkLogicController {
  protected cb func OnInitialize() -> Bool {
    let root = this.GetRootWidget() as inkCompoundWidget;
    let specs: array<PanelSpec> = [];
    let names = [n"a", n"b", n"c"];
    for spec in specs {
      root.AddChildWidget(this.Build(spec));
    }
    let i = 0;
    while i < ArraySize(names) {
      if i % 2 == 0 { i += 1; continue; }
      i = i + 1;
    }
    return true;
  }

  private func Build(spec: PanelSpec) -> ref<inkWidget> {
    let w: ref<inkCompoundWidget>;
    switch spec.kind {
      case PanelKind.Horizontal:
        w = new inkHorizontalPanel();
        break;
      case PanelKind.Vertical:
      case PanelKind.Canvas:
        w = new inkVerticalPanel();
        break;
      default:
        w = new inkCanvas();
    }
    w.SetSize(spec.size);
    w.SetTintColor(spec.tint);
    w.SetOpacity(spec.kind == PanelKind.Canvas ? 0.5 : 1.0);
    w.SetMargin(new inkMargin(1.0, 2.0, 3.0, 4.0));
    return w;
  }

  public func Flags(a: Int32, b: Int32) -> Int32 {
    let x = (a & b) | (a ^ ~b);
    x |= 4;
    x &= 0x0F;
    x ^= 1;
    x -= -1;
    x *= 2;
    x /= 3;
    x %= 7;
    return x >= 0 && x <= 100 ? x : -x;
  }
}
