// dialect: both
// Operators, precedence, casts, literals and calls both compilers share.
public class Exprs extends IScriptable {
  private let m_items: array<ref<IScriptable>>;
  private let m_total: Float;

  public func All(a: Int32, b: Int32, f: Float, ok: Bool) -> Float {
    let arith = a + b - a * b / 2 % 3;
    let bits = a & b | a ^ b;
    let notbits = ~a;
    let logic = ok && !ok || a < b && a <= b || a > b || a >= b;
    let eq = a == b || a != b;
    let neg = -a;
    let pick = ok ? 1.0 : 2.0;
    let nested = ok ? a > b ? 1 : 2 : 3;
    let grouped = (a + b) * (a - b);
    let casted = Cast<Float>(a) + f;
    let obj = this.m_items[0] as Exprs;
    let arr = [1, 2, 3];
    let empty: array<Int32> = [];
    let n = n"SomeName";
    let r = r"base\\gameplay\\gui\\common.inkwidget";
    let t = t"Items.Preset_Katana_Default";
    let s = "tab\tnewline\nreturn\rquote\"apostrophe\'backslash\\smile\u{263A}";
    let nothing: ref<IScriptable> = null;
    arith = 1;
    arith += 2;
    arith -= 3;
    arith *= 4;
    arith /= 5;
    arith |= 6;
    arith &= 7;
    this.m_total = this.m_total + f;
    super.Dispose();
    obj.All(a, b, f, ok);
    ArraySize(arr);
    return pick;
  }
}
