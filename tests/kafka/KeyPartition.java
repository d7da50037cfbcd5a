// The partition the Java Kafka producer chooses for each key: for every key given
// after the partition count, prints one line "key<TAB>partition". Run as a
// single-file program on the Kafka client's classpath:
//   java -cp "$(tests/kafka/kafka.sh classpath)" tests/kafka/KeyPartition.java 6 k1 k2
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class KeyPartition {
  public static void main(String[] args) {
    int partitions = Integer.parseInt(args[0]);
    for (int i = 1; i < args.length; i++) {
      byte[] key = args[i].getBytes(StandardCharsets.UTF_8);
      System.out.println(args[i] + "\t" + BuiltInPartitioner.partitionForKey(key, partitions));
    }
  }
}
