package dev.taskgroup.internal;

import dev.taskgroup.TaskTree;
import java.lang.management.ManagementFactory;
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
 * Registered once, by {@link #registerInBackground}, and never unregistered.
 */
final class TreeBean implements DynamicMBean {
  /** The bean's name. */
  static final String NAME = "dev.taskgroup:type=TaskTree";

  private TreeBean() {}

  /**
   * Registers the bean on a background thread (the platform MBean server can take a while to
   * start): called once, on the library's first use. Without {@code java.management} (a modular
   * application that does not read it) nothing is registered.
   *
   * <p>A platform thread, not a virtual one: starting the MBean server is a few hundred
   * milliseconds of CPU that never parks, and a virtual thread doing it holds its carrier all that
   * time. With one carrier (a one-CPU container, where that is the JDK's default) every virtual
   * thread of the application, the children the first group forks among them, would wait for it.
   * The operating system shares a CPU between platform threads.
   */
  static void registerInBackground() {
    try {
      Thread.ofPlatform().daemon().name("taskgroup-jmx").start(TreeBean::registerNow);
    } catch (LinkageError | RuntimeException noJmx) {
      // java.management is absent: the tree is still available through TaskTree.capture()
    }
  }

  private static void registerNow() {
    try {
      ManagementFactory.getPlatformMBeanServer()
          .registerMBean(new TreeBean(), new ObjectName(NAME));
    } catch (InstanceAlreadyExistsException another) {
      // a copy of the library in another class loader registered first
    } catch (JMException | LinkageError | RuntimeException e) {
      // no JMX here: the tree is still available through TaskTree.capture()
    }
  }

  @Override
  public Object invoke(String actionName, Object[] params, String[] signature)
      throws ReflectionException {
    return switch (actionName) {
      case "format" -> TaskTree.capture().format();
      case "toJson" -> TaskTree.capture().toJson();
      default ->
          throw new ReflectionException(
              new NoSuchMethodException(actionName),
              "no operation '" + actionName + "': this bean has format and toJson");
    };
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
