// Validate checks XML documents against an XML Schema with the JDK's own
// validator (javax.xml.validation, Xerces): the CAP writer's tests run it
// as `java Validate.java schema.xsd doc.xml...`. It prints one line per
// document, "valid <file>" or "invalid <file>: <reason>", and always exits
// 0 when it could read the schema, so the test decides what is expected.
import java.io.File;
import javax.xml.XMLConstants;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.Schema;
import javax.xml.validation.SchemaFactory;

public class Validate {
    public static void main(String[] args) throws Exception {
        SchemaFactory f = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
        Schema schema = f.newSchema(new File(args[0]));
        for (int i = 1; i < args.length; i++) {
            try {
                schema.newValidator().validate(new StreamSource(new File(args[i])));
                System.out.println("valid " + args[i]);
            } catch (org.xml.sax.SAXException e) {
                System.out.println("invalid " + args[i] + ": " + e.getMessage().replace('\n', ' '));
            }
        }
    }
}
