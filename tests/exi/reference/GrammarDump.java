// Dumps EXIficient grammars as text, one line per grammar state, for
// tests/exi/test_reference_codec.py:
//   id  grammarType  hasEndElement  contentGrammarId  typeEmptyId  event|nextId|elementGrammarId ...
// Usage: java -cp EXICodec.jar:. GrammarDump (CLASS_OR_XSD OUT.tsv)...
// CLASS: a class of com.siemens.ct.exi.main.generatedgrammar (the codec's own grammars);
// XSD: a schema file, built with EXIficient's GrammarFactory.
import com.siemens.ct.exi.core.datatype.*;
import com.siemens.ct.exi.core.grammars.Grammars;
import com.siemens.ct.exi.core.grammars.event.*;
import com.siemens.ct.exi.core.grammars.grammar.*;
import com.siemens.ct.exi.core.grammars.production.Production;
import java.io.FileWriter;
import java.io.PrintWriter;
import java.util.*;

public class GrammarDump {
    private final IdentityHashMap<Grammar, Integer> ids = new IdentityHashMap<>();
    private final ArrayDeque<Grammar> todo = new ArrayDeque<>();
    // TypeEmpty grammars are built on each request: do not ask a TypeEmpty for its own
    private final Set<Grammar> empties = Collections.newSetFromMap(new IdentityHashMap<>());

    private int id(Grammar g) {
        if (g == null) return -1;
        Integer i = ids.get(g);
        if (i == null) {
            i = ids.size();
            ids.put(g, i);
            todo.add(g);
        }
        return i;
    }

    private static String datatype(Datatype d) {
        if (d instanceof NBitUnsignedIntegerDatatype) {
            NBitUnsignedIntegerDatatype n = (NBitUnsignedIntegerDatatype) d;
            return "nbit," + n.getLowerBound() + "," + n.getUpperBound();
        }
        if (d instanceof EnumerationDatatype) {
            EnumerationDatatype e = (EnumerationDatatype) d;
            StringBuilder sb = new StringBuilder("enum");
            for (int i = 0; i < e.getEnumerationSize(); i++) sb.append(",").append(e.getEnumValue(i));
            return sb.toString();
        }
        if (d instanceof ListDatatype) return "list(" + datatype(((ListDatatype) d).getListDatatype()) + ")";
        if (d instanceof DatetimeDatatype) return "datetime," + ((DatetimeDatatype) d).getDatetimeType();
        return d.getClass().getSimpleName();
    }

    private void dump(Grammars grammars, String out) throws Exception {
        try (PrintWriter w = new PrintWriter(new FileWriter(out))) {
            id(grammars.getDocumentGrammar().getProduction(0).getNextGrammar());
            while (!todo.isEmpty()) {
                Grammar g = todo.poll();
                StringBuilder sb = new StringBuilder();
                sb.append(ids.get(g)).append('\t').append(g.getGrammarType()).append('\t').append(g.hasEndElement());
                int content2 = -1, empty = -1;
                if (g instanceof SchemaInformedStartTagGrammar || g instanceof SchemaInformedFirstStartTagGrammar) {
                    content2 = id(g.getElementContentGrammar());
                }
                if (g instanceof SchemaInformedFirstStartTagGrammar && !empties.contains(g)) {
                    Grammar e = ((SchemaInformedFirstStartTagGrammar) g).getTypeEmpty();
                    if (e != null) {
                        empties.add(e);
                        empty = id(e);
                    }
                }
                sb.append('\t').append(content2).append('\t').append(empty);
                for (int i = 0; i < g.getNumberOfEvents(); i++) {
                    Production p = g.getProduction(i);
                    Event ev = p.getEvent();
                    String s;
                    int element = -1;
                    switch (ev.getEventType()) {
                        case START_ELEMENT:
                            s = "SE:" + ((StartElement) ev).getQName();
                            element = id(((StartElement) ev).getGrammar());
                            break;
                        case ATTRIBUTE:
                            s = "AT:" + ((Attribute) ev).getQName() + ":" + datatype(((Attribute) ev).getDatatype());
                            break;
                        case CHARACTERS:
                            s = "CH:" + datatype(((Characters) ev).getDatatype());
                            break;
                        case START_ELEMENT_NS:
                            s = "SE_NS:" + ((StartElementNS) ev).getNamespaceURI();
                            break;
                        case ATTRIBUTE_NS:
                            s = "AT_NS:" + ((AttributeNS) ev).getNamespaceURI();
                            break;
                        default:
                            s = ev.getEventType().toString();
                    }
                    sb.append('\t').append(s).append('|').append(id(p.getNextGrammar())).append('|').append(element);
                }
                w.println(sb);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        for (int i = 0; i + 1 < args.length; i += 2) {
            Grammars g = args[i].endsWith(".xsd")
                ? com.siemens.ct.exi.grammars.GrammarFactory.newInstance().createGrammars(args[i])
                : (Grammars) Class.forName("com.siemens.ct.exi.main.generatedgrammar." + args[i])
                    .getDeclaredConstructor().newInstance();
            new GrammarDump().dump(g, args[i + 1]);
        }
    }
}
