package dev.taskgroup.internal;

import dev.taskgroup.TaskTree;
import java.lang.management.ManagementFactory;
import java.util.concurrent.locks.LockSupport;
import javax.management.Attribute;
import javax.management.AttributeList;
import javax.management.AttributeNotFoundException;
import javax.management.DynamicMBean;
import javax.management.InstanceAlreadyExistsException;
import javax.management.JMException;
import javax.management.MBeanInfo;
import javax.management.MBeanOperationInfo;
import javax.management.MBeanParameterInfo;
import javax.management.ObjectName;
import javax.management.ReflectionException;

/**
 * The JMX bean {@code dev.taskgroup:type=TaskTree}: operations {@code format} and {@code toJson}
 * return {@link TaskTree#capture()} as text or JSON, for tools outside the process (JConsole,
 * {@code taskgroup-tools}). A dynamic bean, so that JMX needs no reflective access to this module.
 *
 * <pre>
 * Implementation overview
 *
 * The bean is registered by its keeper, a daemon platform thread (LibraryThreads) started by the
 * first thread to use the library (TreeRoots.add) while there is none. The keeper wakes once per
 * keep-alive; when no thread has started using the library since its last look and none that did
 * is alive (TreeRoots), it unregisters the bean and ends: a registered bean, like a live thread,
 * keeps the class loader that loaded the library, and an application server that drops the
 * application's loader must be able to collect it. Where threads that used the library live on (a
 * pool's), they keep the loader anyway (their ThreadState), and the bean stays.
 *
 * A platform thread, not a virtual one: starting the MBean server is a few hundred milliseconds of
 * CPU that never parks, and a virtual thread doing it holds its carrier all that time. With one
 * carrier (a one-CPU container, where that is the JDK's default) every virtual thread of the
 * application, the children the first group forks among them, would wait for it. The operating
 * system shares a CPU between platform threads.
 *
 * TreeRoots.beanKept says whether there is a keeper; set under this class's monitor by keep(),
 * cleared under it by the keeper that ends. The keeper clears it, then looks at the threads;
 * TreeRoots.add registers a thread, then reads it: either the new thread is seen and the keeper
 * goes on, or the thread sees no keeper and starts one, which cannot register before the old one
 * has unregistered (the monitor). A copy of the library in another class loader that registered
 * first holds the name: this copy's keeper tries again at each look, so that the tree of the copy
 * in use is served once the other's keeper has ended.
 * </pre>
 */
final class TreeBean implements DynamicMBean {
  /** The bean's name. */
  static final String NAME = "dev.taskgroup:type=TaskTree";

  /** Whether this copy's bean is registered; only the keeper touches it. */
  private static boolean registered;

  private TreeBean() {}

  /**
   * Starts the keeper if there is none (TreeRoots.add, when TreeRoots.beanKept is clear). Without
   * {@code java.management} (a modular application that does not read it) this class cannot load,
   * and the caller stops trying.
   */
  static synchronized void keep() {
    if (!TreeRoots.beanKept) {
      LibraryThreads.startPlatform("taskgroup-jmx", TreeBean::keeper);
      TreeRoots.beanKept = true; // only once started: a failed start leaves it to the next thread
    }
  }

  private static void keeper() {
    register();
    long adds = TreeRoots.adds();
    for (; ; ) {
      long keepAlive = LibraryThreads.keepAliveNanos();
      long parked = System.nanoTime();
      do { // a full keep-alive, whatever wakes it
        LockSupport.parkNanos(TreeBean.class, keepAlive - (System.nanoTime() - parked));
      } while (System.nanoTime() - parked < keepAlive);
      synchronized (TreeBean.class) {
        long before = adds;
        adds = TreeRoots.adds();
        TreeRoots.beanKept = false; // then look at the threads: add() registers, then reads this
        if (adds == before && TreeRoots.live().isEmpty()) {
          unregister();
          return;
        }
        TreeRoots.beanKept = true;
        if (!registered) {
          register();
        }
      }
    }
  }

  private static void register() {
    try {
      ManagementFactory.getPlatformMBeanServer()
          .registerMBean(new TreeBean(), new ObjectName(NAME));
      registered = true;
    } catch (InstanceAlreadyExistsException another) {
      // a copy of the library in another class loader registered first: tried again at each look
    } catch (JMException | LinkageError | RuntimeException e) {
      // no JMX here: the tree is still available through TaskTree.capture()
    }
  }

  private static void unregister() {
    if (registered) {
      registered = false;
      try {
        ManagementFactory.getPlatformMBeanServer().unregisterMBean(new ObjectName(NAME));
      } catch (JMException | RuntimeException gone) {
        // unregistered by someone else: nothing to do
      }
    }
  }

  @Override
  public Object invoke(String actionName, Object[] params, String[] signature)
      throws ReflectionException {
    if ("format".equals(actionName)) {
      return TaskTree.capture().format();
    } else if ("toJson".equals(actionName)) {
      return TaskTree.capture().toJson();
    }
    throw new ReflectionException(
        new NoSuchMethodException(String.valueOf(actionName)),
        "no operation '" + actionName + "': this bean has format and toJson");
  }

  @Override
  public MBeanInfo getMBeanInfo() {
    MBeanParameterInfo[] none = new MBeanParameterInfo[0];
    return new MBeanInfo(
        TreeBean.class.getName(),
        "Every live task group, cancel scope and task of the process",
        null,
        null,
        new MBeanOperationInfo[] {
          new MBeanOperationInfo(
              "format",
              "The tree as text, one line per node, like pstree",
              none,
              String.class.getName(),
              MBeanOperationInfo.INFO),
          new MBeanOperationInfo(
              "toJson",
              "The tree as JSON; thread ids match jcmd Thread.dump_to_file -format=json",
              none,
              String.class.getName(),
              MBeanOperationInfo.INFO)
        },
        null);
  }

  @Override
  public Object getAttribute(String attribute) throws AttributeNotFoundException {
    throw new AttributeNotFoundException("this bean has no attributes: call format or toJson");
  }

  @Override
  public void setAttribute(Attribute attribute) throws AttributeNotFoundException {
    throw new AttributeNotFoundException("this bean has no attributes: call format or toJson");
  }

  @Override
  public AttributeList getAttributes(String[] attributes) {
    return new AttributeList();
  }

  @Override
  public AttributeList setAttributes(AttributeList attributes) {
    return new AttributeList();
  }
}
