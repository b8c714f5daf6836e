package dev.taskgroup.examples.context;

import dev.taskgroup.ContextPropagator;
import java.util.List;

/**
 * Recipe (JDK 25+, where {@link ScopedValue} is final): re-binds a listed set of scoped values in
 * every child. A thread started by a thread factory inherits no scoped-value bindings; this
 * propagator reads, on the forking thread, each listed value that is bound there, and runs the
 * child's work inside the same bindings. Values not bound on the forking thread stay unbound in the
 * child.
 *
 * <pre>{@code
 * static final ScopedValue<String> REQUEST_ID = ScopedValue.newInstance();
 * TaskGroup group =
 *     TaskGroup.builder().contextPropagator(new ScopedValuePropagator(REQUEST_ID)).build();
 * }</pre>
 */
public final class ScopedValuePropagator implements ContextPropagator {
  private final List<ScopedValue<?>> values;

  /** Propagates {@code values} (each one the forking thread has bound). */
  public ScopedValuePropagator(ScopedValue<?>... values) {
    this.values = List.of(values);
  }

  @Override
  public Runnable wrap(Runnable work) {
    ScopedValue.Carrier bindings = null;
    for (ScopedValue<?> value : values) {
      if (value.isBound()) { // read on the forking thread
        bindings = rebind(bindings, value);
      }
    }
    if (bindings == null) {
      return work;
    }
    ScopedValue.Carrier captured = bindings;
    return () -> captured.run(work); // bound in the child for the work, unbound after
  }

  private static <T> ScopedValue.Carrier rebind(ScopedValue.Carrier bindings, ScopedValue<T> v) {
    return bindings == null ? ScopedValue.where(v, v.get()) : bindings.where(v, v.get());
  }
}
