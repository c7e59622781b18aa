package aliyunrpc

import (
	"net/url"
	"testing"
)

// TestSignatureKnownAnswer checks the signature against the worked
// example of Aliyun's SMS documentation ("HTTP协议及签名",
// help.aliyun.com/document_detail/101343.html, also quoted by many
// clients' tests): AccessKeyId testId, secret testSecret.
func TestSignatureKnownAnswer(t *testing.T) {
	params := map[string]string{
		"AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
		"PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
		"SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
		"SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": `{"customer":"test"}`,
		"Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
	}
	const wantToSign = "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001" +
		"%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8" +
		"%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0" +
		"%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D" +
		"%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
	const wantSignature = "zJDF+Lrzhj/ThnlvIToysFRq6t4="
	query := CanonicalQuery(params)
	if got := StringToSign("GET", query); got != wantToSign {
		t.Errorf("string to sign\n got %s\nwant %s", got, wantToSign)
	}
	if got := Signature("GET", query, "testSecret"); got != wantSignature {
		t.Errorf("signature %s, want %s", got, wantSignature)
	}
	if got, want := Encode(wantSignature), "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"; got != want {
		t.Errorf("encoded signature %s, want %s", got, want)
	}
	for in, want := range map[string]string{" ": "%20", "*": "%2A", "~": "~", "+": "%2B", "a-_.Z9": "a-_.Z9"} {
		if got := Encode(in); got != want {
			t.Errorf("Encode(%q) = %q, want %q", in, got, want)
		}
	}

	// The signed query parses back into what Verify accepts, and only
	// with the right secret and untouched parameters.
	q, err := url.ParseQuery(SignedQuery("GET", params, "testSecret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Get("Signature"); got != wantSignature {
		t.Errorf("SignedQuery's Signature %s, want %s", got, wantSignature)
	}
	if ok, toSign := Verify("GET", q, "testSecret"); !ok || toSign != wantToSign {
		t.Errorf("Verify of the example = %v, %s; want true, the example's string to sign", ok, toSign)
	}
	if ok, _ := Verify("GET", q, "otherSecret"); ok {
		t.Error("Verify with another secret = true")
	}
	q.Set("PhoneNumbers", "15300000002")
	if ok, _ := Verify("GET", q, "testSecret"); ok {
		t.Error("Verify of a changed parameter = true")
	}
	q.Set("PhoneNumbers", "15300000001")
	q.Add("PhoneNumbers", "15300000001")
	if ok, _ := Verify("GET", q, "testSecret"); ok {
		t.Error("Verify of a parameter given twice = true")
	}
}
